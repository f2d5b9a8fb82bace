"""The Dockerfile frontend without a daemon: parser, substitution, instructions, the stage
plan, the context files a build reads, .dockerignore, RUN mounts, cache keys, image config
rules and the change filter of RUN steps."""

from __future__ import annotations

import pytest

from servin.dockerfile import dockerignore, reads
from servin.dockerfile.instructions import (
    Arg,
    Cmd,
    Copy,
    Env,
    Healthcheck,
    Label,
    OnBuild,
    Run,
    Shell,
    Single,
    load,
    parse_trigger,
)
from servin.dockerfile.parser import DockerfileError, parse, split_words
from servin.dockerfile.plan import make_plan, platform_args
from servin.dockerfile.shell import Lexer
from servin.engine.build import imageconfig, runmounts
from servin.engine.build.adapter import drop_made_paths
from servin.engine.build.cache import Key
from servin.engine.build.events import StepError
from servin.engine.build.state import DEFAULT_PATH, Layer, State, begin_stage, scratch
from servin.errors import InvalidArgument

PLATS = platform_args("linux/amd64", "linux/amd64")


# -- parser ---------------------------------------------------------------------------------------


def test_continuations_comments_and_blank_lines_inside_an_instruction() -> None:
    parsed = parse("FROM busybox\nRUN echo a \\\n# a comment\n    b \\\n\n  c\n")
    run = parsed.lines[1]
    assert run.keyword == "RUN"
    assert run.rest == "echo a     b   c"
    assert (run.start, run.end) == (2, 6)
    assert parsed.warnings and "empty continuation" in parsed.warnings[0]


def test_escape_directive_backtick() -> None:
    parsed = parse("# escape=`\nFROM busybox\nRUN echo a `\n  b\n")
    assert parsed.escape == "`"
    assert parsed.lines[1].rest == "echo a   b"


def test_directives_only_at_the_top() -> None:
    parsed = parse("FROM busybox\n# escape=`\nRUN echo \\\n x\n")
    assert parsed.escape == "\\"
    assert parsed.lines[1].rest == "echo  x"
    assert parse("# syntax=docker/dockerfile:1\n# escape=\\\nFROM x\n").directives == {
        "syntax": "docker/dockerfile:1", "escape": "\\"}


def test_repeated_directive_and_bad_escape_are_errors() -> None:
    with pytest.raises(DockerfileError, match="only one escape"):
        parse("# escape=`\n# escape=`\nFROM x\n")
    with pytest.raises(DockerfileError, match="invalid escape"):
        parse("# escape=x\nFROM x\n")


def test_unknown_instruction_names_its_line() -> None:
    with pytest.raises(DockerfileError, match="line 2: unknown instruction: RUNN"):
        parse("FROM busybox\nRUNN echo\n")


def test_flags_are_split_off_with_quotes() -> None:
    line = parse('COPY --chown="user:group" --from=build a b\n').lines[0]
    assert line.flags == ["--chown=user:group", "--from=build"]
    assert line.rest == "a b"


def test_heredocs_bodies_quoting_and_tab_stripping() -> None:
    text = ("FROM x\nRUN <<EOF\necho $A\nEOF\nRUN <<-'END' cat\n\tline\n\tEND\n"
            "COPY <<a <<b /d/\n1\na\n2\nb\n")
    lines = parse(text).lines
    assert lines[1].heredocs[0].content == "echo $A\n" and lines[1].heredocs[0].expand
    doc = lines[2].heredocs[0]
    assert (doc.name, doc.content, doc.expand, doc.chomp) == ("END", "line\n", False, True)
    assert [(d.name, d.content) for d in lines[3].heredocs] == [("a", "1\n"), ("b", "2\n")]


def test_unterminated_heredoc() -> None:
    with pytest.raises(DockerfileError, match="unterminated heredoc"):
        parse("FROM x\nRUN <<EOF\necho\n")


def test_json_form_has_no_heredocs() -> None:
    assert parse('FROM x\nRUN ["sh", "-c", "<<EOF"]\n').lines[1].heredocs == []


@pytest.mark.parametrize(("text", "words"), [
    ("a=1 b=2", ["a=1", "b=2"]),
    ('a="x y" b=\'z w\'', ['a="x y"', "b='z w'"]),
    (r"a=x\ y b", [r"a=x\ y", "b"]),
    ('  spaced   out  ', ["spaced", "out"]),
])
def test_split_words(text: str, words: list[str]) -> None:
    assert split_words(text) == words


# -- substitution ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("word", "expected"), [
    ("$A", "1"),
    ("${A}x", "1x"),
    ("${UNSET:-def}", "def"),
    ("${EMPTY:-def}", "def"),
    ("${EMPTY-def}", ""),
    ("${UNSET-def}", "def"),
    ("${A:+alt}", "alt"),
    ("${EMPTY:+alt}", ""),
    ("${EMPTY+alt}", "alt"),
    ("${UNSET:-${A}0}", "10"),
    ("'$A'", "$A"),
    ('"$A b"', "1 b"),
    (r"\$A", "$A"),
    ('"a\\"b"', 'a"b'),
    ("$", "$"),
    ("a$UNSET-b", "a-b"),
])
def test_substitution(word: str, expected: str) -> None:
    env = {"A": "1", "EMPTY": ""}
    assert Lexer().process_word(word, env) == expected


def test_substitution_errors() -> None:
    lexer = Lexer()
    with pytest.raises(InvalidArgument, match="must be set"):
        lexer.process_word("${X:?must be set}", {})
    with pytest.raises(InvalidArgument, match="missing '}'"):
        lexer.process_word("${A", {"A": "1"})
    with pytest.raises(InvalidArgument, match="unsupported modifier"):
        lexer.process_word("${A:=x}", {"A": "1"})


def test_word_splitting_keeps_quoted_blanks() -> None:
    assert Lexer().process_words('$P "a b" c', {"P": "80 443"}) == ["80", "443", "a b", "c"]


def test_backtick_escape_and_heredoc_expansion() -> None:
    assert Lexer("`").process_word("a`$b", {"b": "x"}) == "a$b"
    assert Lexer().expand_heredoc('say "$A" \\$B\n', {"A": "hi", "B": "no"}) == 'say "hi" $B\n'


# -- instructions ---------------------------------------------------------------------------------


def test_stages_names_and_global_args() -> None:
    df = load("ARG V=1\nFROM busybox:${V} AS Build\nRUN true\nFROM build\n")
    assert [a.args for a in df.meta_args] == [[("V", "1")]]
    assert df.stages[0].name == "build" and df.stages[1].label == "stage-1"
    assert df.stage("BUILD") is df.stages[0] and df.stage("1") is df.stages[1]


@pytest.mark.parametrize(("text", "message"), [
    ("RUN true\n", "before the first FROM"),
    ("FROM a AS x\nFROM b AS x\n", "duplicate name"),
    ("FROM a AS 1x\n", "invalid name for build stage"),
    ("FROM a b\n", "either one or three"),
    ("FROM a\nCOPY x\n", "at least two arguments"),
    ("FROM a\nCOPY --bogus=1 x y\n", "unknown flag: --bogus"),
    ("FROM a\nADD --from=b x y\n", "unknown flag: --from"),
    ("FROM a\nSHELL sh -c\n", "JSON form"),
    ("FROM a\nENV\n", "at least one argument"),
    ("FROM a\nENV a=b c\n", "can't find ="),
    ("FROM a\nONBUILD ONBUILD RUN x\n", "isn't allowed"),
    ("FROM a\nONBUILD FROM x\n", "isn't allowed as an ONBUILD trigger"),
    ("FROM a\nHEALTHCHECK FOO x\n", "Unknown type"),
    ("FROM a\nSTOPSIGNAL a b\n", "exactly one argument"),
    ("", "no FROM"),
])
def test_instruction_errors(text: str, message: str) -> None:
    with pytest.raises(DockerfileError, match=message):
        load(text)


def test_typed_instructions() -> None:
    df = load(
        "FROM busybox\n"
        "RUN --mount=type=cache,target=/c --network=none make\n"
        'CMD ["sh", "-c", "x"]\n'
        "ENV A 1 2\n"
        "ENV B=2 C=\"3 4\"\n"
        "LABEL a=b\n"
        "ARG X Y=2\n"
        "COPY --from=0 --chown=1:2 --chmod=600 --link a b /d/\n"
        "HEALTHCHECK --interval=5s --retries=3 CMD curl -f x\n"
        "ONBUILD RUN echo hi\n"
        'SHELL ["/bin/bash", "-c"]\n'
        "WORKDIR /w\n")
    run, cmd, env1, env2, label, arg, copy, health, onbuild, shell, workdir = \
        df.stages[0].instructions
    assert isinstance(run, Run) and run.mounts == ["type=cache,target=/c"] and \
        run.network == "none" and run.script == "make"
    assert isinstance(cmd, Cmd) and cmd.argv == ["sh", "-c", "x"]
    assert isinstance(env1, Env) and env1.pairs == [("A", "1 2")]
    assert isinstance(env2, Env) and env2.pairs == [("B", "2"), ("C", '"3 4"')]
    assert isinstance(label, Label) and label.pairs == [("a", "b")]
    assert isinstance(arg, Arg) and arg.args == [("X", None), ("Y", "2")]
    assert isinstance(copy, Copy) and (copy.sources, copy.dest, copy.from_, copy.chown,
                                       copy.chmod, copy.link) == (["a", "b"], "/d/", "0", "1:2",
                                                                  "600", True)
    assert isinstance(health, Healthcheck) and health.test == ["CMD-SHELL", "curl -f x"] and \
        health.interval == "5s" and health.retries == "3"
    assert isinstance(onbuild, OnBuild) and onbuild.expression == "RUN echo hi"
    assert isinstance(shell, Shell) and shell.argv == ["/bin/bash", "-c"]
    assert isinstance(workdir, Single) and workdir.value == "/w"


def test_onbuild_trigger_with_heredoc_round_trips() -> None:
    df = load("FROM x\nONBUILD RUN <<EOF\necho hi\nEOF\n")
    onbuild = df.stages[0].instructions[0]
    assert isinstance(onbuild, OnBuild)
    trigger = parse_trigger(onbuild.expression)
    assert isinstance(trigger, Run) and trigger.line.heredocs[0].content == "echo hi\n"


# -- the plan -------------------------------------------------------------------------------------


def test_plan_target_needs_and_independent_stages() -> None:
    df = load("FROM busybox AS a\nFROM busybox AS b\nFROM busybox AS unused\n"
              "FROM a AS c\nCOPY --from=b /x /x\nRUN --mount=from=a,target=/m true\n")
    plan = make_plan(df, {}, "", PLATS)
    assert plan.target == 3 and plan.needed == [0, 1, 3]
    assert plan.stages[3].deps == {0, 1}
    assert make_plan(df, {}, "b", PLATS).needed == [1]
    with pytest.raises(InvalidArgument, match="could not be found"):
        make_plan(df, {}, "nope", PLATS)


def test_plan_global_args_and_build_args() -> None:
    df = load("ARG TAG=1\nARG BASE=busybox:$TAG\nFROM $BASE\n")
    assert make_plan(df, {}, "", PLATS).stages[0].base == "busybox:1"
    assert make_plan(df, {"TAG": "2"}, "", PLATS).stages[0].base == "busybox:2"
    assert make_plan(load("FROM alpine:$TARGETARCH\n"), {}, "", PLATS).stages[0].base == \
        "alpine:amd64"


def test_plan_refuses_a_later_stage() -> None:
    with pytest.raises(InvalidArgument, match="circular"):
        make_plan(load("FROM x AS a\nCOPY --from=b / /\nFROM y AS b\n"), {}, "", PLATS)


def test_platform_args() -> None:
    args = platform_args("linux/arm64/v8", "linux/amd64")
    assert (args["TARGETARCH"], args["TARGETVARIANT"], args["BUILDOS"]) == ("arm64", "v8",
                                                                            "linux")


# -- what a build reads ---------------------------------------------------------------------------


def test_reads_follow_args_env_and_skip_urls_stages_and_heredocs() -> None:
    df = load("FROM busybox AS b\nARG DIR=src\nENV SUB=lib\nCOPY $DIR/$SUB/*.py /app/\n"
              "ADD http://example.com/x /x\nCOPY <<EOF /f\nx\nEOF\n"
              "RUN --mount=type=bind,source=cfg,target=/c true\n"
              "FROM busybox\nCOPY --from=b /app /app\nCOPY ./top.txt /\n")
    found = reads.context_reads(df, {"DIR": "source"}, "", PLATS, lambda image: [])
    assert found == ["cfg", "source/lib/*.py", "top.txt"]
    assert reads.wanted(found, "source") and reads.wanted(found, "source/lib/a.py")
    assert not reads.wanted(found, "other.txt")


def test_reads_unknowable_means_everything() -> None:
    df = load("FROM busybox\nCOPY $FROM_BASE_ENV /x\n")
    assert reads.context_reads(df, {}, "", PLATS, lambda image: []) is None
    df = load("FROM busybox\nCOPY a /a\n")
    assert reads.context_reads(df, {}, "", PLATS, lambda image: None) is None
    assert reads.context_reads(df, {}, "", PLATS, lambda image: ["COPY b /b"]) == ["a", "b"]


# -- .dockerignore --------------------------------------------------------------------------------


@pytest.mark.parametrize(("path", "excluded"), [
    ("build", True), ("build/x/y", True), ("a.tmp", True), ("dir/a.tmp", False),
    ("dir/deep/a.log", True), ("a.log", True), ("keep.log", False), ("docs/x.md", True),
    ("docs/README.md", False), ("/secret", True), ("Dockerfile", False), ("x?y", False),
])
def test_dockerignore_rules(path: str, excluded: bool) -> None:
    patterns = dockerignore.read_patterns(
        "# comment\n\nbuild\n*.tmp\n**/*.log\n!keep.log\ndocs\n!docs/README.md\n/secret\n")
    assert dockerignore.Matcher(patterns).excluded(path) is excluded


def test_dockerignore_exception_below_an_excluded_directory_is_reachable() -> None:
    matcher = dockerignore.Matcher(["docs", "!docs/README.md"])
    assert matcher.may_hold_kept("docs") and not matcher.may_hold_kept("build")


# -- RUN mounts -----------------------------------------------------------------------------------


def test_run_mount_defaults_per_type() -> None:
    bind = runmounts.parse_mount("target=/src")
    assert (bind.type, bind.readonly, bind.source) == ("bind", True, "")
    cache = runmounts.parse_mount("type=cache,target=cache,uid=1000,mode=0700,sharing=locked",
                                  workdir="/app")
    assert (cache.target, cache.id, cache.readonly, cache.uid, cache.mode, cache.sharing) == \
        ("/app/cache", "/app/cache", False, 1000, 0o700, "locked")
    secret = runmounts.parse_mount("type=secret,id=npm,required")
    assert (secret.target, secret.mode, secret.required) == ("/run/secrets/npm", 0o400, True)
    tmpfs = runmounts.parse_mount("type=tmpfs,dst=/t,size=64m")
    assert tmpfs.size == 64 << 20
    rw = runmounts.parse_mount("type=bind,from=build,source=/out,target=/o,rw")
    assert (rw.from_, rw.source, rw.readonly) == ("build", "/out", False)


@pytest.mark.parametrize(("text", "message"), [
    ("type=ssh", "not supported"),
    ("type=nfs,target=/x", "unknown type"),
    ("type=bind", "target is required"),
    ("type=bind,target=/", "over the root"),
    ("type=cache,target=/c,sharing=sometimes", "sharing"),
    ("type=tmpfs,target=/t,size=lots", "bad size"),
    ("type=bind,target=/x,colour=red", "unknown option"),
    ("type=secret,target=/s,source=x", "takes no source"),
    ("type=cache,target=/c,uid=-1", "cannot be negative"),
    ("type=bind,target=/x,target=/y", "given twice"),
])
def test_run_mount_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        runmounts.parse_mount(text)


def test_run_mount_duplicate_targets() -> None:
    mounts = [runmounts.parse_mount("target=/a"), runmounts.parse_mount("type=tmpfs,target=/a")]
    with pytest.raises(InvalidArgument, match="duplicate mount target"):
        runmounts.check_unique(mounts)


def test_a_secret_never_enters_a_cache_key() -> None:
    secret = runmounts.parse_mount("type=secret,id=npm")
    assert "data" not in secret.key() and secret.key()["id"] == "npm"


# -- cache keys -----------------------------------------------------------------------------------


def test_cache_keys_depend_on_every_part_and_their_boundaries() -> None:
    base = Key("RUN", "parent").add(["sh", "-c", "make"], ["A=1"]).digest
    assert base == Key("RUN", "parent").add(["sh", "-c", "make"], ["A=1"]).digest
    assert base != Key("RUN", "other").add(["sh", "-c", "make"], ["A=1"]).digest
    assert base != Key("RUN", "parent").add(["sh", "-c", "make"], ["A=2"]).digest
    assert base != Key("COPY", "parent").add(["sh", "-c", "make"], ["A=1"]).digest
    assert Key("X").add("ab", "c").digest != Key("X").add("a", "bc").digest
    assert len(base) == 64


# -- image config rules ---------------------------------------------------------------------------


def test_state_ids_are_canonical_and_steps_add_history() -> None:
    state = State(scratch("linux", "amd64"), key="k")
    first = state.id
    assert first == State(scratch("linux", "amd64")).id
    child = state.derive()
    child.set_env("A", "1")
    child.add_step("ENV A=1", None, created="2024-01-01T00:00:00Z")
    assert child.history[-1] == {"created": "2024-01-01T00:00:00Z", "created_by": "ENV A=1",
                                 "empty_layer": True}
    layer = Layer("sha256:" + "1" * 64, "sha256:" + "1" * 64, 10, "x")
    child.add_step("COPY x", layer, created="2024-01-01T00:00:01Z")
    assert child.config["rootfs"]["diff_ids"] == [layer.diff_id]
    assert child.id != first and State.from_json(child.to_json(), "k").id == child.id


def test_begin_stage_adds_path_and_drops_triggers_but_keeps_the_image() -> None:
    state = State({"config": {"OnBuild": ["RUN x"]}}, image_id="sha256:" + "a" * 64)
    begin_stage(state)
    assert state.image["Env"] == [f"PATH={DEFAULT_PATH}"] and "OnBuild" not in state.image
    assert state.id == "sha256:" + "a" * 64


def test_env_keeps_its_order_and_replaces_in_place() -> None:
    state = State({"config": {"Env": ["A=1", "B=2"]}})
    state.set_env("A", "3")
    state.set_env("C", "4")
    assert state.image["Env"] == ["A=3", "B=2", "C=4"]


def test_expose_volumes_workdir_and_signals() -> None:
    image: dict[str, object] = {}
    imageconfig.expose(image, ["80", "53/udp", "8000-8002/tcp"])
    assert set(image["ExposedPorts"]) == {  # type: ignore[call-overload]
        "80/tcp", "53/udp", "8000/tcp", "8001/tcp", "8002/tcp"}
    with pytest.raises(StepError, match="invalid containerPort"):
        imageconfig.expose({}, ["http"])
    assert imageconfig.workdir(image, "/a") == "/a"
    assert imageconfig.workdir(image, "b/../c") == "/a/c"
    imageconfig.stop_signal(image, "SIGUSR1")
    imageconfig.stop_signal(image, "9")
    with pytest.raises(StepError, match="invalid signal"):
        imageconfig.stop_signal(image, "SIGNOPE")


def test_healthcheck_leaves_zero_values_out_and_checks_timings() -> None:
    image: dict[str, object] = {}
    imageconfig.healthcheck(image, ["CMD-SHELL", "true"], interval="1m30s", timeout="",
                            start_period="", start_interval="", retries="3")
    assert image["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 90_000_000_000,
                                    "Retries": 3}
    with pytest.raises(StepError, match="less than 1ms"):
        imageconfig.healthcheck({}, ["CMD", "x"], interval="10us", timeout="",
                                start_period="", start_interval="", retries="")
    with pytest.raises(StepError, match="negative"):
        imageconfig.healthcheck({}, ["CMD", "x"], interval="", timeout="", start_period="",
                                start_interval="", retries="-1")


def test_shell_form_commands_use_shell() -> None:
    assert imageconfig.command({}, None, "make all") == ["/bin/sh", "-c", "make all"]
    assert imageconfig.command({"Shell": ["bash", "-exc"]}, None, "x") == ["bash", "-exc", "x"]
    assert imageconfig.command({}, ["a", "b"], "") == ["a", "b"]


# -- what a RUN step's layer keeps ----------------------------------------------------------------


def test_mount_points_and_etc_files_stay_out_of_the_layer() -> None:
    changes = [("C", "/etc"), ("A", "/etc/hosts"), ("A", "/etc/resolv.conf"), ("A", "/run"),
               ("A", "/run/secrets"), ("A", "/run/secrets/tok"), ("C", "/var"),
               ("A", "/var/cache"), ("A", "/var/cache/apt"), ("A", "/var/cache/new-file"),
               ("A", "/out"), ("A", "/out/x")]
    made = ["/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/run/secrets/tok",
            "/var/cache/apt"]
    assert drop_made_paths(changes, made) == [
        ("C", "/var"), ("A", "/var/cache"), ("A", "/var/cache/new-file"), ("A", "/out"),
        ("A", "/out/x")]


def test_a_real_change_next_to_a_mount_point_keeps_its_directory() -> None:
    changes = [("C", "/etc"), ("A", "/etc/hosts"), ("C", "/etc/passwd"), ("D", "/etc/old")]
    assert drop_made_paths(changes, ["/etc/hosts"]) == [
        ("C", "/etc"), ("C", "/etc/passwd"), ("D", "/etc/old")]

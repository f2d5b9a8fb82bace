"""Unit tests of the foundation's pieces: references, templates, stores, events, config."""

from __future__ import annotations

import asyncio
import filecmp
import sqlite3
import subprocess
from pathlib import Path

import pytest

from servin.cli.gotemplate import Template, TemplateError
from servin.engine.config import load_config
from servin.engine.events import EventBus
from servin.engine.store.content import BlobCorrupted, ContentStore
from servin.engine.store.metadata import MetadataStore
from servin.engine.store.migrations import MIGRATIONS
from servin.errors import InvalidArgument
from servin.humanize import human_duration, human_size
from servin.reference import familiar, parse_reference

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest"),
        ("index.docker.io/user/app", "docker.io/user/app:latest"),
        ("localhost/app", "localhost/app:latest"),
        ("localhost:5000/a/b:x", "localhost:5000/a/b:x"),
        ("registry.k8s.io/pause:3.9", "registry.k8s.io/pause:3.9"),
        ("quay.io/x/y@sha256:" + "a" * 64, "quay.io/x/y@sha256:" + "a" * 64),
        ("a.b/c:t@sha256:" + "b" * 64, "a.b/c:t@sha256:" + "b" * 64),
    ],
)
def test_reference_normalisation(text: str, normalised: str) -> None:
    assert str(parse_reference(text)) == normalised


@pytest.mark.parametrize(
    "text",
    [
        "Foo:bar:baz",
        "UPPER",
        "a b",
        "",
        "x@sha256:short",
        "-lead",
        "a/:t",
        "a:" + "t" * 129,
        "f" * 64,
    ],
)
def test_reference_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_reference(text)


def test_familiar_names() -> None:
    assert familiar("docker.io/library/busybox:latest") == "busybox:latest"
    assert familiar("docker.io/user/app:1") == "user/app:1"
    assert familiar("localhost:5000/a:b") == "localhost:5000/a:b"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{.Names}} {{.Status}}", "web Up 2 minutes"),
        ("{{json .Labels}}", '{"a":"1","b":"2"}'),
        ("{{.Labels}}", "map[a:1 b:2]"),
        ('{{join .Ports ", "}}', "80/tcp, 443/tcp"),
        ("{{.Names | upper}}", "WEB"),
        ('{{lower "ABC"}}', "abc"),
        ("{{title .Names}}", "Web"),
        ("{{range .Ports}}<{{.}}>{{end}}", "<80/tcp><443/tcp>"),
        ("{{if .Empty}}yes{{else}}no{{end}}", "no"),
        ("{{with .Nested}}{{.Deep}}{{end}}", "3"),
        ('{{index .Labels "b"}}', "2"),
        ("{{println .Names}}", "web\n"),
        ("x {{- .Names -}} y", "xweby"),
        ("{{len .Ports}}", "2"),
    ],
)
def test_go_templates(template: str, expected: str) -> None:
    data = {
        "Names": "web",
        "Status": "Up 2 minutes",
        "Labels": {"a": "1", "b": "2"},
        "Ports": ["80/tcp", "443/tcp"],
        "Empty": "",
        "Nested": {"Deep": 3},
    }
    assert Template(template).render(data) == expected


@pytest.mark.parametrize(
    "template", ["{{.Missing}}", "{{nosuch .X}}", "{{if .X}}", "{{end}}", "{{.X"]
)
def test_go_template_errors(template: str) -> None:
    with pytest.raises(TemplateError):
        Template(template).render({"X": 1})


def test_humanize() -> None:
    assert human_size(1982605) == "1.98MB"
    assert human_size(999) == "999B"
    assert human_duration(0.2) == "Less than a second"
    assert human_duration(75) == "About a minute"
    assert human_duration(3 * 86400) == "3 days"


def test_content_store_verifies(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    digest = store.write_bytes(b"hello")
    assert store.read_verified(digest) == b"hello"
    with pytest.raises(InvalidArgument, match="digest mismatch"):
        store.write_bytes(b"other", expected=digest)
    assert list(store.ingest_dir.iterdir()) == []
    store.blob_path(digest).write_bytes(b"hellp")
    with pytest.raises(BlobCorrupted):
        store.read_verified(digest)
    with pytest.raises(BlobCorrupted):
        store.verify(digest)


def test_content_store_cleans_partial_ingest(tmp_path: Path) -> None:
    store = ContentStore(tmp_path)
    w = store.writer()
    w.write(b"half")  # a crash here leaves a partial file
    assert store.clean_ingest() == 1
    assert list(store.ingest_dir.iterdir()) == []


def test_metadata_migrations(tmp_path: Path) -> None:
    db = MetadataStore(tmp_path / "servin.db")
    assert db.schema_version == len(MIGRATIONS)
    db.close()
    # Reopening applies nothing twice.
    db = MetadataStore(tmp_path / "servin.db")
    rows = db.query("SELECT version FROM schema_version")
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))
    assert db.query_one("PRAGMA journal_mode")[0] == "wal"
    db.close()
    # A database from a newer Servin is refused rather than damaged.
    raw = sqlite3.connect(tmp_path / "servin.db")
    raw.execute("INSERT INTO schema_version(version) VALUES (999)")
    raw.commit()
    raw.close()
    with pytest.raises(RuntimeError, match="newer than this Servin"):
        MetadataStore(tmp_path / "servin.db")


def test_metadata_transaction_rolls_back(tmp_path: Path) -> None:
    db = MetadataStore(tmp_path / "servin.db")
    with pytest.raises(ZeroDivisionError), db.transaction() as tx:
        tx.execute(
            "INSERT INTO images (id, manifest_digest, manifest_media_type, config_digest,"
            " created, size) VALUES ('x', 'm', 't', 'c', 'now', 1)"
        )
        1 / 0  # noqa: B018
    assert db.query("SELECT * FROM images") == []


def test_event_bus_replays_and_drops_slow_subscribers() -> None:
    async def scenario() -> None:
        bus = EventBus()
        bus.bind(asyncio.get_running_loop())
        bus.publish("image", "import", "a")
        bus.publish("image", "tag", "a", name="x")
        got = []
        async for event in bus.subscribe(
            since_ns=0, until_ns=None, match=lambda e: e.action == "tag"
        ):
            got.append(event)
            break
        assert [(e.action, e.attributes) for e in got] == [("tag", {"name": "x"})]
        # A subscriber that never reads is dropped, and publishing never blocks.
        stream = bus.subscribe()
        waiter = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0)
        for i in range(5000):
            bus.publish("container", "start", str(i))
        first = await waiter
        assert first.id == "0"
        with pytest.raises(Exception, match="fell too far behind"):
            async for _ in stream:
                pass

    asyncio.run(scenario())


def test_config_file_and_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(
        'root = "/srv/servin"\nlog_level = "debug"\n[registries]\ninsecure = ["127.0.0.1:5000"]\n'
    )
    c = load_config(cfg, {"exec_root": tmp_path / "run", "hosts": ()})
    assert c.root == Path("/srv/servin") and c.exec_root == tmp_path / "run"
    assert c.registries.insecure == ["127.0.0.1:5000"]
    cfg.write_text("bogus = 1\n")
    with pytest.raises(InvalidArgument, match="unknown key 'bogus'"):
        load_config(cfg)
    with pytest.raises(InvalidArgument, match="does not exist"):
        load_config(tmp_path / "none.toml")


def test_generated_code_is_fresh(tmp_path: Path) -> None:
    """servin/api must be exactly what scripts/gen-proto makes from proto/."""
    out = tmp_path / "api"
    subprocess.run(
        [str(REPO / "scripts" / "gen-proto"), str(out)],
        check=True,
        env={"PYTHON": str(Path(__import__("sys").executable)), "PATH": "/usr/bin:/bin"},
    )
    committed = REPO / "servin" / "api"

    def files(root: Path) -> set[str]:
        return {
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }

    assert files(out) == files(committed), "run scripts/gen-proto"
    stale = [f for f in files(out) if not filecmp.cmp(out / f, committed / f, shallow=False)]
    assert stale == [], f"stale generated code: {stale}; run scripts/gen-proto"


def test_cli_doc_is_fresh() -> None:
    """docs/cli.md must be what the CLI's commands generate (python -m servin.devtools.clidoc)."""
    from servin.devtools.clidoc import render

    assert (REPO / "docs" / "cli.md").read_text() == render(), \
        "run: python -m servin.devtools.clidoc > docs/cli.md"


@pytest.mark.parametrize(("text", "ok"), [
    ("127.0.0.1:5000", True), ("localhost", True), ("[::1]:5000", True), ("docker.io", True),
    ("a.b:65536", False), ("x:.aa35a0::", False), ("-bad.example", False), ("", False),
])
def test_registry_hosts(text: str, ok: bool) -> None:
    # search sends a request to the host it is given: one that cannot be a URL's host is
    # refused before (the API fuzz found an InvalidURL escaping as an internal error).
    from servin.reference import is_domain

    assert is_domain(text) is ok


def test_search_refuses_a_host_that_is_no_host() -> None:
    import asyncio

    from servin.engine.images.search import search

    with pytest.raises(InvalidArgument, match="invalid registry host"):
        asyncio.run(search(None, "x:.aa35a0::/box", None))  # type: ignore[arg-type]  # refused before either is used


def test_no_test_directory_is_left_out_of_collection() -> None:
    # pytest skips directories whose name matches norecursedirs (its default list has
    # "build": the builder's suite once never ran). Every directory holding tests must pass.
    import fnmatch
    import tomllib

    root = Path(__file__).resolve().parents[2]
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    patterns = config["norecursedirs"]
    for test_file in (root / "tests").rglob("test_*.py"):
        for part in test_file.relative_to(root / "tests").parent.parts:
            hit = [p for p in patterns if fnmatch.fnmatch(part, p)]
            assert not hit, f"{test_file} is not collected: {part!r} matches {hit}"

"""Write docs/cli.md: docker's commands and flags next to what Servin's CLI really has.

Docker's side is the table below (docker CLI 28's reference: its commands and their flags,
swarm-only flags left out). Servin's side is read from the Click commands themselves, so the
document cannot claim a command or flag that does not exist, and it follows every command or
flag added: ``python -m servin.devtools.clidoc > docs/cli.md`` (a test checks it is fresh).

A command is *supported* when Servin has it with every docker flag, *partial* when it has the
command but not all of docker's flags (the missing ones are listed), *no* when it has not.
"""

from __future__ import annotations

import sys

import click

from servin.cli.main import cli

# Flags shared by run and create (docker 28).
_CREATE_FLAGS = (
    "--add-host --annotation -a/--attach --blkio-weight --blkio-weight-device --cap-add "
    "--cap-drop --cgroup-parent --cgroupns --cidfile --cpu-period --cpu-quota --cpu-rt-period "
    "--cpu-rt-runtime -c/--cpu-shares --cpus --cpuset-cpus --cpuset-mems --device "
    "--device-cgroup-rule --device-read-bps --device-read-iops --device-write-bps "
    "--device-write-iops --disable-content-trust --dns --dns-option --dns-search --domainname "
    "--entrypoint -e/--env --env-file --expose --gpus --group-add --health-cmd "
    "--health-interval --health-retries --health-start-interval --health-start-period "
    "--health-timeout -h/--hostname --init -i/--interactive --ip --ip6 --ipc --isolation "
    "-l/--label --label-file --link --link-local-ip --log-driver --log-opt --mac-address "
    "-m/--memory --memory-reservation --memory-swap --memory-swappiness --mount --name "
    "--network --network-alias --no-healthcheck --oom-kill-disable --oom-score-adj --pid "
    "--pids-limit --platform --privileged -p/--publish -P/--publish-all --pull -q/--quiet "
    "--read-only --restart --rm --runtime --security-opt --shm-size --stop-signal "
    "--stop-timeout --storage-opt --sysctl --tmpfs -t/--tty --ulimit -u/--user --userns --uts "
    "-v/--volume --volume-driver --volumes-from -w/--workdir"
)
_UPDATE_FLAGS = (
    "--blkio-weight --cpu-period --cpu-quota --cpu-rt-period --cpu-rt-runtime -c/--cpu-shares "
    "--cpus --cpuset-cpus --cpuset-mems -m/--memory --memory-reservation --memory-swap "
    "--pids-limit --restart"
)
_BUILD_FLAGS = (
    "--add-host --build-arg --cache-from --cgroup-parent --compress --cpu-period --cpu-quota "
    "-c/--cpu-shares --cpuset-cpus --cpuset-mems --disable-content-trust -f/--file --force-rm "
    "--iidfile --isolation --label -m/--memory --memory-swap --network --no-cache --platform "
    "--pull -q/--quiet --rm --security-opt --shm-size --squash -t/--tag --target --ulimit"
)
_EVENTS = "-f/--filter --format --since --until"
_PS = "-a/--all -f/--filter --format -n/--last -l/--latest --no-trunc -q/--quiet -s/--size"
_IMAGES = "-a/--all --digests -f/--filter --format --no-trunc -q/--quiet --tree"

# docker command path -> its flags ("" = none). Order is the document's order.
DOCKER: dict[str, str] = {
    # top level
    "attach": "--detach-keys --no-stdin --sig-proxy",
    "build": _BUILD_FLAGS,
    "commit": "-a/--author -c/--change -m/--message -p/--pause",
    "completion": "",
    "cp": "-a/--archive -L/--follow-link -q/--quiet",
    "create": _CREATE_FLAGS,
    "diff": "",
    "events": _EVENTS,
    "exec": "-d/--detach --detach-keys -e/--env --env-file -i/--interactive --privileged "
    "-t/--tty -u/--user -w/--workdir",
    "export": "-o/--output",
    "history": "--format -H/--human --no-trunc --platform -q/--quiet",
    "images": _IMAGES,
    "import": "-c/--change -m/--message --platform",
    "info": "-f/--format",
    "inspect": "-f/--format -s/--size --type",
    "kill": "-s/--signal",
    "load": "-i/--input --platform -q/--quiet",
    "login": "-p/--password --password-stdin -u/--username",
    "logout": "",
    "logs": "--details -f/--follow --since -n/--tail -t/--timestamps --until",
    "pause": "",
    "port": "",
    "ps": _PS,
    "pull": "-a/--all-tags --disable-content-trust --platform -q/--quiet",
    "push": "-a/--all-tags --disable-content-trust --platform -q/--quiet",
    "rename": "",
    "restart": "-s/--signal -t/--timeout",
    "rm": "-f/--force -l/--link -v/--volumes",
    "rmi": "-f/--force --no-prune --platform",
    "run": _CREATE_FLAGS + " -d/--detach --detach-keys --sig-proxy",
    "save": "-o/--output --platform",
    "search": "-f/--filter --format --limit --no-trunc",
    "start": "-a/--attach --checkpoint --checkpoint-dir --detach-keys -i/--interactive",
    "stats": "-a/--all --format --no-stream --no-trunc",
    "stop": "-s/--signal -t/--timeout",
    "tag": "",
    "top": "",
    "unpause": "",
    "update": _UPDATE_FLAGS,
    "version": "-f/--format",
    "wait": "",
    # docker container ...
    "container attach": "--detach-keys --no-stdin --sig-proxy",
    "container commit": "-a/--author -c/--change -m/--message -p/--pause",
    "container cp": "-a/--archive -L/--follow-link -q/--quiet",
    "container create": _CREATE_FLAGS,
    "container diff": "",
    "container exec": "-d/--detach --detach-keys -e/--env --env-file -i/--interactive "
    "--privileged -t/--tty -u/--user -w/--workdir",
    "container export": "-o/--output",
    "container inspect": "-f/--format -s/--size",
    "container kill": "-s/--signal",
    "container logs": "--details -f/--follow --since -n/--tail -t/--timestamps --until",
    "container ls": _PS,
    "container pause": "",
    "container port": "",
    "container prune": "--filter -f/--force",
    "container rename": "",
    "container restart": "-s/--signal -t/--timeout",
    "container rm": "-f/--force -l/--link -v/--volumes",
    "container run": _CREATE_FLAGS + " -d/--detach --detach-keys --sig-proxy",
    "container start": "-a/--attach --checkpoint --checkpoint-dir --detach-keys "
    "-i/--interactive",
    "container stats": "-a/--all --format --no-stream --no-trunc",
    "container stop": "-s/--signal -t/--timeout",
    "container top": "",
    "container unpause": "",
    "container update": _UPDATE_FLAGS,
    "container wait": "",
    # docker image ...
    "image build": _BUILD_FLAGS,
    "builder prune": "-a/--all --filter -f/--force --keep-storage",
    "image history": "--format -H/--human --no-trunc --platform -q/--quiet",
    "image import": "-c/--change -m/--message --platform",
    "image inspect": "-f/--format --platform",
    "image load": "-i/--input --platform -q/--quiet",
    "image ls": _IMAGES,
    "image prune": "-a/--all --filter -f/--force",
    "image pull": "-a/--all-tags --disable-content-trust --platform -q/--quiet",
    "image push": "-a/--all-tags --disable-content-trust --platform -q/--quiet",
    "image rm": "-f/--force --no-prune --platform",
    "image save": "-o/--output --platform",
    "image tag": "",
    # docker volume ...
    "volume create": "-d/--driver --label -o/--opt",
    "volume inspect": "-f/--format",
    "volume ls": "-f/--filter --format -q/--quiet",
    "volume prune": "-a/--all --filter -f/--force",
    "volume rm": "-f/--force",
    # docker network ...
    "network connect": "--alias --driver-opt --gw-priority --ip --ip6 --link --link-local-ip",
    "network create": "--attachable --aux-address --config-from --config-only -d/--driver "
    "--gateway --ingress --internal --ip-range --ipam-driver --ipam-opt --ipv4 --ipv6 --label "
    "-o/--opt --scope --subnet",
    "network disconnect": "-f/--force",
    "network inspect": "-f/--format -v/--verbose",
    "network ls": "-f/--filter --format --no-trunc -q/--quiet",
    "network prune": "--filter -f/--force",
    "network rm": "-f/--force",
    # docker system ...
    "system df": "--format -v/--verbose",
    "system events": _EVENTS,
    "system info": "-f/--format",
    "system prune": "-a/--all --filter -f/--force --volumes",
    # docker context ...
    "context create": "--description --docker --from",
    "context export": "",
    "context import": "",
    "context inspect": "-f/--format",
    "context ls": "--format -q/--quiet",
    "context rm": "-f/--force",
    "context show": "",
    "context update": "--description --docker",
    "context use": "",
}
DOCKER_GLOBAL = (
    "--config -c/--context -D/--debug -H/--host -l/--log-level --tls --tlscacert --tlscert "
    "--tlskey --tlsverify"
)
# docker's own aliases, checked as command names in Servin too.
DOCKER_ALIASES = {
    "container ls": ("container list", "container ps"),
    "container rm": ("container remove",),
    "image ls": ("image list",),
    "image rm": ("image remove",),
    "volume ls": ("volume list",),
    "volume rm": ("volume remove",),
    "network ls": ("network list",),
    "network rm": ("network remove",),
    "context ls": ("context list",),
    "context rm": ("context remove",),
}
# docker's management commands outside this table's scope (swarm, plugins, buildx, ...).
OTHER_DOCKER = (
    "buildx compose config manifest node plugin secret service stack swarm trust"
)


def _lookup(path: str) -> click.Command | None:
    """Servin's command at ``path`` ("container ls"), or None."""
    ctx = click.Context(cli, info_name="servin")
    command: click.Command | None = cli
    for word in path.split():
        if not isinstance(command, click.Group):
            return None
        command = command.get_command(ctx, word)
        if command is None:
            return None
        ctx = click.Context(command, parent=ctx, info_name=word)
    return command


def _servin_flags(command: click.Command) -> dict[str, str]:
    """Every option name ("--all", "-a") -> its display form ("-a/--all"), hidden ones and
    --help left out."""
    out: dict[str, str] = {}
    for param in command.params:
        if isinstance(param, click.Option) and not param.hidden:
            names = sorted(param.opts, key=len)
            if "--help" in names:
                continue
            for name in names:
                out[name] = "/".join(names)
    return out


def _docker_flags(spec: str) -> dict[str, str]:
    out = {}
    for item in spec.split():
        long = item.split("/")[-1]
        out[long] = item
    return out


def _code(items: list[str]) -> str:
    return ", ".join(f"`{i}`" for i in items)


def compare(path: str) -> tuple[str, list[str], list[str], list[str]]:
    """(status, docker flags Servin has, docker flags it lacks, Servin-only flags)."""
    command = _lookup(path)
    if command is None:
        return "no", [], [], []
    docker = _docker_flags(DOCKER[path])
    servin = _servin_flags(command)
    have = [servin[k] for k in docker if k in servin]
    missing = [docker[k] for k in docker if k not in servin]
    # docker's short form where Servin has only the long one: "-f (for --format)"
    missing += [
        f"{short} (for {long})"
        for long, spec in docker.items()
        if long in servin
        for short in spec.split("/")[:-1]
        if short not in servin[long].split("/")
    ]
    extra = [
        v for v in dict.fromkeys(servin.values())
        if not any(n in docker for n in v.split("/"))
    ]
    return ("partial" if missing else "yes"), have, missing, extra


def render() -> str:
    """The markdown text of docs/cli.md."""
    counts = {"yes": 0, "partial": 0, "no": 0}
    rows = []
    for path in DOCKER:
        status, have, missing, extra = compare(path)
        counts[status] += 1
        aliases = [a for a in DOCKER_ALIASES.get(path, ()) if _lookup(a) is not None]
        name = f"`{path}`" + (f" ({_code(aliases)})" if aliases else "")
        label = {"yes": "yes", "partial": "partial", "no": "**no**"}[status]
        rows.append(
            f"| {name} | {label} | {_code(have) or ('-' if status != 'no' else '')} | "
            f"{_code(missing)} | {_code(extra)} |"
        )
    glob = _servin_flags(cli)
    docker_glob = _docker_flags(DOCKER_GLOBAL)
    glob_have = [glob[k] for k in docker_glob if k in glob]
    glob_missing = [docker_glob[k] for k in docker_glob if k not in glob]
    known = {p.split()[0] for p in DOCKER}
    ctx = click.Context(cli)
    servin_only = sorted(n for n in cli.list_commands(ctx) if n not in known)
    lines = [
        "# Servin's CLI next to docker's",
        "",
        "Generated by `python -m servin.devtools.clidoc` from the commands themselves: every",
        "command and flag marked as there exists. The docker side is docker CLI 28's command",
        "reference (swarm-only flags left out). *yes*: the command and all of docker's flags;",
        "*partial*: the command, without the flags listed as missing; **no**: not in Servin.",
        "",
        f"Totals: {counts['yes']} yes, {counts['partial']} partial, {counts['no']} no.",
        "",
        "## Global flags",
        "",
        f"Servin has {_code(glob_have)}" + (f"; not {_code(glob_missing)}" if glob_missing
                                             else "") + ".",
        "",
        "Where the CLI connects: `-H/--host`, else `-c/--context`, else `$SERVIN_HOST`, else",
        "`$SERVIN_CONTEXT`, else the current context (`servin context use`), else",
        "`unix:///run/servin/servin.sock`. Hosts are `unix:///path`, `tcp://host:port` (with",
        "`--tlsverify --tlscacert --tlscert --tlskey`, or `--tls` to skip verifying the",
        "daemon) and `ssh://user@host[:port][/socket]`. Contexts live in",
        "`$SERVIN_CONFIG/contexts.json` (default `~/.config/servin/contexts.json`).",
        "",
        "## Output, filters, exit codes",
        "",
        "- `--format json` prints one JSON object per line for lists; `inspect` prints a JSON",
        "  array. `--format 'table {{.ID}}\\t{{.Names}}'` picks columns; any other format is a",
        "  Go template (`{{.Field}}`, `{{json .}}`, `{{index .Labels \"k\"}}`, `{{.Label",
        "  \"k\"}}`, `join`, `lower`, `upper`, `title`, `printf`, `println`, `len`, `range`,",
        "  `if`/`else`, variables). Tables are plain aligned text, as docker prints them; on a",
        "  terminal the header is bold (not with `NO_COLOR` set or `TERM=dumb`), piped there",
        "  are no escape codes.",
        "- `--filter key=value` may be repeated; the daemon checks the keys (ps: `id`, `name`,",
        "  `label`, `status`, `exited`, `ancestor`, `before`, `since`, `volume`, `network`,",
        "  `health`, `is-task`; events: `type`, `event`, `container`, `image`, `volume`,",
        "  `network`, `pod`, `label`).",
        "- Flags are spelled as docker's parser takes them, for every command: `-s=TERM`,",
        "  `-e=FOO=bar`, `-it`, and `=true`/`=false` after any boolean flag (`--rm=false`).",
        "- Exit codes: `run` and `start -a` exit with the container's code; 125 when the",
        "  command line is wrong or the daemon refuses to create/start the container; 126 when",
        "  the command cannot be invoked (permission denied, a directory); 127 when it is not",
        "  found; 1 for an unknown command and other errors (one line, never a traceback);",
        "  `rm -f`/`rmi -f` of a missing object is no error. ctrl-c ends the CLI by the signal.",
        "- `run --init` runs Debian's static tini (daemon config `init_path`) as PID 1;",
        "  `search REGISTRY/TEXT` searches a registry's v2 catalog (Docker Hub has none);",
        "  `logs --details` prints the attributes `--log-opt labels=,labels-regex=,env=,",
        "  env-regex=` record (json-file's `attrs`).",
        "- `servin completion bash|zsh|fish` prints a completion script; container, image,",
        "  volume, network and context names complete live from the daemon.",
        "",
        "## Commands",
        "",
        "| docker command | servin | docker flags Servin has | docker flags missing "
        "| Servin-only flags |",
        "|---|---|---|---|---|",
        *rows,
        "",
        f"Not covered here (docker management commands): {_code(OTHER_DOCKER.split())}.",
        "",
        f"Servin-only commands: {_code(servin_only)}.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    """Print the document."""
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":
    sys.exit(main())

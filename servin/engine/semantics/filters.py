"""docker's list filters (``--filter key=value``) with docker's keys and matching rules.

A door hands the core ``Filters`` (key -> values; values of one key are ORed, different keys
ANDed) however its wire carries them. Matching follows docker's ``filters.Args``: ``Match``
is an exact match or a regular-expression search (so ``name=web`` finds ``/web-1`` and
``name=^/web$`` only ``/web``; a container's name is matched in docker's ``/NAME`` form),
``label`` takes ``KEY`` or ``KEY=VALUE`` and every one given must match.
"""

from __future__ import annotations

import contextlib
import fnmatch
import re
import time
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from functools import lru_cache

from servin.engine.containers.model import Container
from servin.engine.events import Event
from servin.engine.images.store import ImageRecord
from servin.engine.networks.model import NetworkView
from servin.engine.timefmt import parse_ns_or_zero
from servin.engine.volumes.model import VolumeView
from servin.errors import InvalidArgument
from servin.reference import parse_reference
from servin.units import is_duration, parse_duration_ns

Filters = dict[str, list[str]]

CONTAINER_KEYS = frozenset({
    "ancestor", "before", "expose", "exited", "health", "id", "isolation", "is-task",
    "label", "name", "network", "publish", "since", "status", "volume",
})
CONTAINER_PRUNE_KEYS = frozenset({"until", "label", "label!"})
IMAGE_KEYS = frozenset({"before", "dangling", "label", "reference", "since", "until"})
IMAGE_PRUNE_KEYS = frozenset({"dangling", "until", "label", "label!"})
VOLUME_KEYS = frozenset({"dangling", "driver", "label", "label!", "name"})
VOLUME_PRUNE_KEYS = frozenset({"label", "label!", "all"})
NETWORK_KEYS = frozenset({"dangling", "driver", "id", "label", "name", "scope", "type"})
NETWORK_PRUNE_KEYS = frozenset({"until", "label", "label!"})
EVENT_KEYS = frozenset({"config", "container", "daemon", "event", "image", "label", "network",
                        "node", "plugin", "pod", "scope", "secret", "service", "type",
                        "volume"})

CONTAINER_STATUSES = ("created", "restarting", "running", "removing", "paused", "exited",
                      "dead")
HEALTH_STATUSES = ("starting", "healthy", "unhealthy", "none")


def build(pairs: Iterable[tuple[str, Iterable[str]]]) -> Filters:
    """Filters from (key, values) pairs (a key may repeat)."""
    out: Filters = {}
    for key, values in pairs:
        out.setdefault(key, []).extend(values)
    return out


def check(filters: Mapping[str, list[str]], allowed: frozenset[str]) -> Filters:
    """The filters, or InvalidArgument naming a key this list does not know."""
    for key in filters:
        if key not in allowed:
            raise InvalidArgument(f"invalid filter {key!r} (valid: {', '.join(sorted(allowed))})")
    for value in filters.get("until", []):
        parse_until(value)  # a bad value fails now, whatever there is to match
    return {k: list(v) for k, v in filters.items()}


@lru_cache(maxsize=256)
def _pattern(value: str) -> re.Pattern[str] | None:
    try:
        return re.compile(value)
    except re.error:
        return None  # docker skips a value that is not a valid expression


def match(values: Iterable[str], source: str) -> bool:
    """docker's ``Args.Match``: some value equals ``source`` or, as a regular expression,
    is found in it."""
    for value in values:
        if value == source:
            return True
        pattern = _pattern(value)
        if pattern is not None and pattern.search(source):
            return True
    return False


def label_matches(labels: Mapping[str, str], wanted: Iterable[str]) -> bool:
    """True when every ``KEY`` or ``KEY=VALUE`` in ``wanted`` is in ``labels``."""
    for item in wanted:
        key, sep, value = item.partition("=")
        if key not in labels or (sep and labels[key] != value):
            return False
    return True


def labels_ok(labels: Mapping[str, str], filters: Mapping[str, list[str]]) -> bool:
    """``label=`` (all must match) and ``label!=`` (none may match)."""
    if "label" in filters and not label_matches(labels, filters["label"]):
        return False
    return not any(label_matches(labels, [item]) for item in filters.get("label!", []))


def parse_bool(key: str, values: list[str]) -> bool:
    """A boolean filter value (true/false/1/0)."""
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidArgument(
        f"invalid value {values[-1]!r} for filter {key!r}: expected true or false"
    )


def parse_until(value: str, now: float | None = None) -> int:
    """docker's ``until=`` value as nanoseconds since the epoch: a Go duration before now
    (``24h``, ``1h30m``), a Unix timestamp (``1700000000[.5]``) or an RFC 3339 time."""
    now = time.time() if now is None else now
    if is_duration(value):
        return int(now * 1e9) - parse_duration_ns(value)
    try:
        return int(float(value) * 1e9)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidArgument(
            f"invalid until filter {value!r}: use a duration (24h), a Unix time or RFC 3339"
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return int(moment.timestamp() * 1e9)


def check_values(filters: Mapping[str, list[str]], key: str, allowed: Iterable[str]) -> None:
    """InvalidArgument for a value of ``key`` outside ``allowed`` (docker's wording)."""
    allowed = tuple(allowed)
    for value in filters.get(key, []):
        if value not in allowed:
            raise InvalidArgument(f"invalid filter '{key}={value}'")


def until_ok(created_ns: int, filters: Mapping[str, list[str]]) -> bool:
    """``until=``: created before every cutoff given."""
    return all(created_ns < parse_until(v) for v in filters.get("until", []))


def container_matches(c: Container, filters: Mapping[str, list[str]], *, networks: list[str],
                      network_ids: list[str], pivots: Mapping[str, list[int]],
                      ancestors: set[str]) -> bool:
    """Whether container ``c`` passes docker's ``ps`` filters.

    The caller resolves what needs lookups: ``networks`` (names of the networks it is on) and
    their IDs, ``pivots`` (creation times of the ``before``/``since`` containers) and
    ``ancestors`` (the image IDs the ``ancestor`` values name).
    """
    if "id" in filters and not match(filters["id"], c.id):
        return False
    if "name" in filters and not match(filters["name"], "/" + c.name):
        return False
    if "label" in filters and not label_matches(c.config.labels, filters["label"]):
        return False
    if "status" in filters and c.state.status not in filters["status"]:
        return False
    if "exited" in filters and (
        c.state.status != "exited" or str(c.state.exit_code) not in filters["exited"]
    ):
        return False
    if "ancestor" in filters and c.image_id not in ancestors and not any(
        v in (c.image_ref, c.image_id) or c.image_id.removeprefix("sha256:").startswith(v)
        for v in filters["ancestor"]
    ):
        return False
    if "health" in filters and (c.state.health_status or "none") not in filters["health"]:
        return False
    if "volume" in filters and not any(
        v in (m.name, m.source, m.target) for m in c.mounts for v in filters["volume"]
    ):
        return False
    if "before" in filters and not all(c.created_ns < ns for ns in pivots.get("before", [])):
        return False
    if "since" in filters and not all(c.created_ns > ns for ns in pivots.get("since", [])):
        return False
    # No swarm here: no container is a task.
    if "is-task" in filters and parse_bool("is-task", filters["is-task"]):
        return False
    if "isolation" in filters and "default" not in filters["isolation"]:
        return False
    if "publish" in filters and not _ports_match(
            filters["publish"], [f"{p.container_port}/{p.protocol or 'tcp'}"
                                 for p in c.host_config.port_bindings]):
        return False
    if "expose" in filters and not _ports_match(
            filters["expose"], [*c.config.exposed_ports,
                                *(f"{p.container_port}/{p.protocol or 'tcp'}"
                                  for p in c.host_config.port_bindings)]):
        return False
    if "network" in filters:
        wanted = filters["network"]
        if not any(n in wanted for n in networks) and not any(
                i and any(i.startswith(v) for v in wanted) for i in network_ids):
            return False
    return True


def _ports_match(wanted: list[str], have: list[str]) -> bool:
    """``publish=``/``expose=`` values (``80``, ``80/udp``, ``8000-8080/tcp``) against
    ``port/proto`` entries."""
    ports: set[tuple[int, str]] = set()
    for item in have:
        number, _, proto = item.partition("/")
        with contextlib.suppress(ValueError):
            ports.add((int(number), proto or "tcp"))
    for value in wanted:
        spec, _, proto = value.partition("/")
        low, _, high = spec.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            raise InvalidArgument(f"invalid filter value {value!r}: expected PORT[/PROTO] "
                                  "or START-END[/PROTO]") from None
        if any(first <= n <= last and p == (proto or "tcp") for n, p in ports):
            return True
    return False


def network_matches(view: NetworkView, filters: Mapping[str, list[str]]) -> bool:
    """Whether a network passes docker's ``network ls`` filters."""
    n = view.network
    if "id" in filters and not match(filters["id"], n.id):
        return False
    if "name" in filters and not match(filters["name"], n.name):
        return False
    if "driver" in filters and n.driver not in filters["driver"]:
        return False
    if "label" in filters and not label_matches(n.labels, filters["label"]):
        return False
    if "scope" in filters and "local" not in filters["scope"]:
        return False
    if "type" in filters:
        check_values(filters, "type", ("custom", "builtin"))
        if ("builtin" if n.builtin else "custom") not in filters["type"]:
            return False
    if "dangling" in filters:
        dangling = not n.builtin and not view.endpoints
        if parse_bool("dangling", filters["dangling"]) != dangling:
            return False
    return True


def volume_matches(view: VolumeView, filters: Mapping[str, list[str]]) -> bool:
    """Whether a volume passes docker's ``volume ls`` filters."""
    v = view.volume
    if "dangling" in filters and parse_bool("dangling", filters["dangling"]) == bool(
            view.ref_count):
        return False
    if "name" in filters and not match(filters["name"], v.name):
        return False
    if "driver" in filters and v.driver not in filters["driver"]:
        return False
    return labels_ok(v.labels, filters)


def reference_matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether an image name matches one of the ``reference=`` patterns (globs, with or
    without the tag, in the familiar or the full form)."""
    ref = parse_reference(name)
    candidates = (ref.familiar(), ref.familiar_repository, str(ref), ref.repository)
    return any(fnmatch.fnmatchcase(c, p) for p in patterns for c in candidates)


def image_matches(record: ImageRecord, filters: Mapping[str, list[str]],
                  pivots: Mapping[str, list[str]]) -> bool:
    """Whether an image passes docker's ``images`` filters (``pivots``: the creation times
    of the ``before``/``since`` images, RFC 3339)."""
    if "dangling" in filters and (not record.repo_tags) != parse_bool("dangling",
                                                                      filters["dangling"]):
        return False
    if "label" in filters and not label_matches(record.labels, filters["label"]):
        return False
    if "reference" in filters and not any(reference_matches(n, filters["reference"])
                                          for n in record.repo_tags):
        return False
    if any(record.created >= pivot for pivot in pivots.get("before", [])):
        return False
    if any(record.created <= pivot for pivot in pivots.get("since", [])):
        return False
    return until_ok(parse_ns_or_zero(record.created), filters)


def image_prune_matches(record: ImageRecord, filters: Mapping[str, list[str]]) -> bool:
    """Whether ``image prune``'s filters (until=, label=, label!=) select an image."""
    return until_ok(parse_ns_or_zero(record.created), filters) and labels_ok(record.labels, filters)


def event_predicate(filters: Mapping[str, list[str]]) -> Callable[[Event], bool]:
    """docker's ``events`` filters as one predicate over events (keys checked first)."""
    wanted = check(filters, EVENT_KEYS)

    def matches(event: Event) -> bool:
        if "type" in wanted and event.type not in wanted["type"]:
            return False
        # "health_status" matches "health_status: healthy", as docker does.
        actions = wanted.get("event")
        if actions and event.action not in actions and event.action.split(":")[0] not in actions:
            return False
        for kind in ("container", "image", "volume", "network", "pod", "daemon"):
            if kind in wanted:
                if event.type != kind:
                    return False
                names = {event.id, event.attributes.get("name", "")}
                if not any(v in names or event.id.startswith(v) for v in wanted[kind]):
                    return False
        return "label" not in wanted or label_matches(event.attributes, wanted["label"])

    return matches

"""List responses assembled from cached bytes (server/grpc/wirecache.py) are the messages
the generated code would have encoded."""

from __future__ import annotations

from servin.api.cri.runtime.v1 import api_pb2
from servin.api.servin.v1 import containers_pb2
from servin.engine.containers.model import EXITED, Container, ContainerState
from servin.engine.containers.views import ContainerListing
from servin.engine.server.cri.container_status import list_element, list_item
from servin.engine.server.grpc.containers import summary
from servin.engine.server.grpc.wirecache import WireCache
from servin.protowire import framed


def _container(i: int, **state: object) -> Container:
    c = Container(id=f"{i:064x}", name=f"c{i}", image_ref="busybox",
                  image_id="sha256:" + "a" * 64, created_ns=1_700_000_000_000_000_000 + i,
                  pod_id="p" * 64, state=ContainerState(**state))  # type: ignore[arg-type]
    c.config.labels = {"n": str(i), "long": "x" * 300}  # lengths past one varint byte
    c.host_config.annotations = {"note": "y" * i}
    return c


def test_cri_elements_concatenate_to_the_response() -> None:
    made = [_container(i) for i in range(0, 400, 37)]
    built = api_pb2.ListContainersResponse(containers=[list_item(c) for c in made])
    joined = b"".join(list_element(c) for c in made)
    # Equal as messages (map entries may come in another order than a fresh encoding's).
    assert api_pb2.ListContainersResponse.FromString(joined) == built
    assert len(joined) == built.ByteSize()


def test_a_cached_summary_completed_with_its_status_is_the_summary() -> None:
    c = _container(3, status=EXITED, exit_code=2, finished_at_ns=1_700_000_100_000_000_000)
    row = ContainerListing(c, ["sh", "-c", "exit 2"], ["bridge"], version=1)
    now = 1_700_000_200.0
    timeless = summary(row, timeless=True).SerializeToString()
    text = summary(row, now=now).status
    assert text.startswith("Exited (2)")
    data = framed(1, timeless + framed(8, text.encode()))
    parsed = containers_pb2.ListContainersResponse.FromString(data)
    assert list(parsed.containers) == [summary(row, now=now)]


def test_the_cache_builds_once_per_key_and_forgets_the_gone() -> None:
    built: list[str] = []

    def build(name: str) -> bytes:
        built.append(name)
        return name.encode()

    cache: WireCache[str] = WireCache(build)
    assert cache.get("a", 1, "a1") == b"a1"
    assert cache.get("a", 1, "ignored") == b"a1"  # same key: cached
    assert cache.get("a", 2, "a2") == b"a2"
    cache.get("b", 1, "b1")
    assert built == ["a1", "a2", "b1"]
    cache.prune(["a"])
    assert len(cache) == 1
    assert cache.get("b", 1, "b1") == b"b1"
    assert built[-1] == "b1" and len(built) == 4

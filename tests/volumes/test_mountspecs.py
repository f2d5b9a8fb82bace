"""Mount specs parsed and validated by the engine (no daemon needed)."""

from __future__ import annotations

from pathlib import Path

import pytest

from servin.engine.containers import mounts
from servin.engine.containers.model import HostConfig, Mount
from servin.errors import InvalidArgument


def test_parse_bind_forms() -> None:
    m = mounts.parse_bind("data:/srv:ro")
    assert (m.type, m.source, m.target, m.read_only) == ("volume", "data", "/srv", True)
    m = mounts.parse_bind("/host/dir/:/in:rw,rslave,z")
    assert (m.type, m.source, m.target, m.propagation) == ("bind", "/host/dir", "/in", "rslave")
    assert list(m.options) == ["create-host-path"]
    m = mounts.parse_bind("/anon")
    assert (m.type, m.source, m.target) == ("volume", "", "/anon")
    assert list(mounts.parse_bind("data:/x:nocopy").options) == ["nocopy"]


@pytest.mark.parametrize("spec", ["a:b:c:d", "vol:rel", "vol:/x:bogus", "bad name:/x",
                                  "vol:/x:rshared", "/h:/x:nocopy", ""])
def test_parse_bind_refuses(spec: str) -> None:
    with pytest.raises(InvalidArgument):
        mounts.validate_mount(mounts.parse_bind(spec))


def test_validate_mount(tmp_path: Path) -> None:
    ok = mounts.validate_mount(Mount(type="bind", source=str(tmp_path),
                                                target="/a/../b/"))
    assert ok.target == "/b"
    with pytest.raises(InvalidArgument, match="does not exist"):
        mounts.validate_mount(Mount(type="bind", source=str(tmp_path / "no"),
                                               target="/x"))
    with pytest.raises(InvalidArgument, match="cannot mount over the root"):
        mounts.validate_mount(Mount(type="volume", target="/"))
    with pytest.raises(InvalidArgument, match="invalid tmpfs option"):
        mounts.validate_mount(Mount(type="tmpfs", target="/t", options=["bind"]))
    tmpfs = mounts.validate_mount(Mount(type="tmpfs", target="/t",
                                                   options=["size=64m", "mode=1777", "exec"]))
    assert list(tmpfs.options) == ["size=64m", "mode=1777", "exec"]


def test_resolve_precedence_and_cleanup(tmp_path: Path) -> None:
    created: list[str] = []
    removed: list[str] = []

    class V:
        def __init__(self, name: str) -> None:
            self.name = name

    def create(name: str, driver: str, options: dict[str, str], anonymous: bool) -> V:
        if name == "explode":
            raise InvalidArgument("boom")
        name = name or f"anon{len(created)}"
        created.append(name)
        return V(name)

    other = [Mount(type="volume", source="shared", name="shared", target="/s")]
    resolver = mounts.Resolver(container_mounts=lambda name: other, create_volume=create,
                               remove_volume=removed.append, volume_exists=lambda n: False)
    host = HostConfig(binds=["mine:/data"], volumes_from=["src:ro"])
    image = {"Volumes": {"/data": {}, "/cache": {}}}
    resolved, new = mounts.resolve(host, image, resolver)
    assert [(m.target, m.name, m.read_only) for m in resolved] == [
        ("/data", "mine", False), ("/s", "shared", True), ("/cache", "anon1", False)]
    assert new == ["mine", "anon1"]
    host = HostConfig(binds=["first:/a", "explode:/b"])
    with pytest.raises(InvalidArgument):
        mounts.resolve(host, {}, resolver)
    assert removed == ["first"]

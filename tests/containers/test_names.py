"""Container names under concurrent creates: a generated name taken by a create running beside
this one is replaced; a name the user gave is a Conflict."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from servin.engine.containers.model import Container
from servin.engine.containers.service import ContainerService
from servin.engine.containers.store import ContainerStore
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ContainerStore]:
    meta = MetadataStore(tmp_path / "servin.db")
    try:
        yield ContainerStore(meta)
    finally:
        meta.close()


def _container(name: str) -> Container:
    return Container(id=secrets.token_hex(32), name=name, image_ref="busybox",
                     image_id="sha256:" + "0" * 64, created_ns=0)


def test_a_generated_name_taken_meanwhile_is_replaced(store: ContainerStore) -> None:
    store.add(_container("brave_turing"))  # what the create beside ours recorded first
    ours = _container("brave_turing")  # generated from the names before that record
    ContainerService._record(SimpleNamespace(store=store), ours, True)  # type: ignore[arg-type]
    assert ours.name != "brave_turing"
    assert store.names() == {"brave_turing", ours.name}


def test_a_given_name_taken_meanwhile_is_a_conflict(store: ContainerStore) -> None:
    store.add(_container("web"))
    with pytest.raises(Conflict, match='name "/web" is already in use'):
        ContainerService._record(SimpleNamespace(store=store),  # type: ignore[arg-type]
                                 _container("web"), False)
    assert store.names() == {"web"}


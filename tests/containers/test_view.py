"""The in-memory view of container records (containers/cache.py) against the SQLite store:
equal after every kind of write, in commit order under concurrent writers, never sharing the
writer's objects, and rebuilt from the store when it opens again (a daemon restart)."""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

import pytest

from servin.engine.containers.model import EXITED, RUNNING, Container, ContainerState
from servin.engine.containers.store import ContainerStore
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict


def _container(name: str, created_ns: int) -> Container:
    c = Container(id=secrets.token_hex(32), name=name, image_ref="busybox",
                  image_id="sha256:" + "0" * 64, created_ns=created_ns)
    c.config.labels = {"app": name}
    return c


def _assert_view_is_store(store: ContainerStore) -> None:
    assert [e.container for e in store.entries()] == store.list()


@pytest.fixture
def store(tmp_path: Path) -> ContainerStore:
    return ContainerStore(MetadataStore(tmp_path / "servin.db"))


def test_every_write_reaches_the_view(store: ContainerStore) -> None:
    a, b = _container("a", 1), _container("b", 2)
    store.add(a)
    store.add(b)
    _assert_view_is_store(store)
    versions = {e.container.id: e.version for e in store.entries()}

    a.state = ContainerState(status=RUNNING, pid=42, started_at_ns=10)
    store.save_state(a)
    _assert_view_is_store(store)
    entry = store.view.get(a.id)
    assert entry is not None and entry.container.state.pid == 42
    assert entry.version > versions[a.id]
    assert store.view.get(b.id).version == versions[b.id]  # type: ignore[union-attr]

    a.host_config.resources.memory = 1 << 20
    store.save_spec(a)
    _assert_view_is_store(store)
    store.rename(a, "renamed")
    _assert_view_is_store(store)
    assert store.view.get(a.id).container.name == "renamed"  # type: ignore[union-attr]

    with pytest.raises(Conflict):
        store.add(_container("b", 3))  # the name is taken: nothing changes
    with pytest.raises(Conflict):
        store.rename(a, "b")
    _assert_view_is_store(store)

    store.delete(b.id)
    _assert_view_is_store(store)
    assert store.view.get(b.id) is None
    # Newest first, as the store orders.
    store.add(_container("c", 5))
    assert [e.container.name for e in store.entries()] == ["c", "renamed"]


def test_the_view_holds_copies_not_the_writers_objects(store: ContainerStore) -> None:
    c = _container("x", 1)
    store.add(c)
    c.state.status = EXITED  # the caller changes its object without saving it
    c.config.labels["app"] = "changed"
    c.name = "elsewhere"
    seen = store.view.get(c.id)
    assert seen is not None
    assert seen.container.state.status != EXITED
    assert seen.container.config.labels == {"app": "x"}
    assert seen.container.name == "x"
    store.save_state(c)
    seen = store.view.get(c.id)
    assert seen is not None and seen.container.state.status == EXITED
    assert seen.container.config.labels == {"app": "x"}  # the spec was not saved


def test_writes_from_many_threads_end_equal(store: ContainerStore) -> None:
    made = [_container(f"c{i}", i) for i in range(40)]
    for c in made[:20]:
        store.add(c)
    errors: list[BaseException] = []

    def churn(k: int) -> None:
        try:
            for round_ in range(30):
                c = made[(k + round_) % 20]  # the same containers from several threads
                mine = store.get(c.id)
                mine.state = ContainerState(status=RUNNING if round_ % 2 else EXITED,
                                            pid=1000 + k, exit_code=round_)
                store.save_state(mine)
            store.add(made[20 + k])
            store.rename(made[20 + k], f"t{k}")
            if k % 2:
                store.delete(made[20 + k].id)
        except BaseException as e:  # reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=churn, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    # Readers meanwhile see whole entries (never a half-applied write).
    deadline = time.monotonic() + 30
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        for e in store.entries():
            assert e.container.id and e.version > 0
    for t in threads:
        t.join()
    assert not errors, errors
    _assert_view_is_store(store)
    versions = [e.version for e in store.entries()]
    assert len(set(versions)) == len(versions)


def test_a_new_store_fills_the_view_from_the_database(tmp_path: Path) -> None:
    first = ContainerStore(MetadataStore(tmp_path / "servin.db"))
    c = _container("kept", 1)
    first.add(c)
    c.state = ContainerState(status=RUNNING, pid=7)
    first.save_state(c)
    first.meta.close()
    again = ContainerStore(MetadataStore(tmp_path / "servin.db"))  # what a restart does
    _assert_view_is_store(again)
    entry = again.view.get(c.id)
    assert entry is not None and entry.container.state.pid == 7

"""Container records in the metadata store.

A row holds the container's identity in columns (id, name, image, creation time, pod) and two
JSON documents: ``spec`` (what was asked for and resolved: ``{"config", "host_config",
"networking", "mounts"}``, rewritten only by ``update``) and ``state`` (rewritten at every
state change). Both decode straight into the model's structs (msgspec, in C).

Every write goes through this class, which applies it to the in-memory ``ContainerView``
(``cache.py``) right after it commits: listings read that view (``entries``)
and never SQLite. Lookups of one container (``get``, ``resolve``) still read the row: their
callers change the object they get and write it back.
"""

from __future__ import annotations

import builtins
import sqlite3

import msgspec
from msgspec.structs import replace

from servin.engine.containers.cache import ContainerView, ViewEntry
from servin.engine.containers.model import (
    Container,
    ContainerConfig,
    ContainerState,
    HostConfig,
    Mount,
    NetworkingConfig,
)
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict, NotFound

_COLUMNS = "id, name, image_ref, image_id, spec, created_ns, state, snapshot_chain, pod_id"


class StoredSpec(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The ``spec`` column's document (schema 6)."""

    config: ContainerConfig = msgspec.field(default_factory=ContainerConfig)
    host_config: HostConfig = msgspec.field(default_factory=HostConfig)
    networking: NetworkingConfig = msgspec.field(default_factory=NetworkingConfig)
    mounts: list[Mount] = []


_encode = msgspec.json.Encoder().encode
_decode_spec = msgspec.json.Decoder(StoredSpec).decode
_decode_state = msgspec.json.Decoder(ContainerState).decode


def encode_spec(c: Container) -> str:
    """The ``spec`` document of a container."""
    return _encode(StoredSpec(config=c.config, host_config=c.host_config,
                              networking=c.networking, mounts=c.mounts)).decode()


def encode_state(state: ContainerState) -> str:
    """The ``state`` document."""
    return _encode(state).decode()


def _row_to_container(row: sqlite3.Row) -> Container:
    spec = _decode_spec(row["spec"])
    return Container(
        id=row["id"],
        name=row["name"],
        image_ref=row["image_ref"],
        image_id=row["image_id"],
        created_ns=row["created_ns"],
        config=spec.config,
        host_config=spec.host_config,
        networking=spec.networking,
        mounts=spec.mounts,
        state=_decode_state(row["state"]),
        snapshot_chain=row["snapshot_chain"],
        pod_id=row["pod_id"],
    )


def _with_spec(c: Container, spec_doc: str) -> Container:
    """``c`` with the configuration decoded from ``spec_doc`` (a copy nobody else holds)."""
    spec = _decode_spec(spec_doc)
    return replace(c, config=spec.config, host_config=spec.host_config,
                   networking=spec.networking, mounts=spec.mounts)


def _name_taken(name: str, holder: str) -> Conflict:
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container '
        f'"{holder}". You have to remove (or rename) that container to be able to '
        "reuse that name."
    )


class ContainerStore:
    """Queries and updates of container records (blocking: call from worker threads)."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta
        self.view = ContainerView()
        with self.meta.serialized():
            self.view.fill(self.list())

    # Each write holds the store's lock (``serialized``) across its transaction and the view's
    # update, so the view changes in commit order even with writers in several threads; the
    # view gets objects decoded from the written documents, never the caller's.

    def add(self, c: Container) -> None:
        """Record a new container; Conflict if its name is taken (checked in the same
        transaction, so two creates racing for one name cannot both pass the check)."""
        spec, state = encode_spec(c), encode_state(c.state)
        with self.meta.serialized():
            with self.meta.transaction() as db:
                row = db.execute("SELECT id FROM containers WHERE name = ?",
                                 (c.name,)).fetchone()
                if row is not None:
                    raise _name_taken(c.name, row["id"])
                db.execute(
                    f"INSERT INTO containers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (c.id, c.name, c.image_ref, c.image_id, spec, c.created_ns,
                     state, c.snapshot_chain, c.pod_id),
                )
            self.view.put(_with_spec(replace(c, state=_decode_state(state)), spec))

    def save_state(self, c: Container) -> None:
        """Persist the container's state."""
        state = encode_state(c.state)
        with self.meta.serialized():
            with self.meta.transaction() as db:
                changed = db.execute("UPDATE containers SET state = ? WHERE id = ?",
                                     (state, c.id)).rowcount
            if changed and (entry := self.view.get(c.id)) is not None:
                self.view.put(replace(entry.container, state=_decode_state(state)))

    def save_spec(self, c: Container) -> None:
        """Persist the container's (updated) configuration."""
        spec = encode_spec(c)
        with self.meta.serialized():
            with self.meta.transaction() as db:
                changed = db.execute("UPDATE containers SET spec = ? WHERE id = ?",
                                     (spec, c.id)).rowcount
            if changed and (entry := self.view.get(c.id)) is not None:
                self.view.put(_with_spec(entry.container, spec))

    def rename(self, c: Container, new_name: str) -> None:
        """Change the container's name; Conflict if another container has it."""
        with self.meta.serialized():
            with self.meta.transaction() as db:
                row = db.execute("SELECT id FROM containers WHERE name = ?",
                                 (new_name,)).fetchone()
                if row is not None and row["id"] != c.id:
                    raise _name_taken(new_name, row["id"])
                changed = db.execute("UPDATE containers SET name = ? WHERE id = ?",
                                     (new_name, c.id)).rowcount
            if changed and (entry := self.view.get(c.id)) is not None:
                self.view.put(replace(entry.container, name=new_name))
        c.name = new_name

    def delete(self, container_id: str) -> None:
        """Forget a container."""
        with self.meta.serialized():
            with self.meta.transaction() as db:
                db.execute("DELETE FROM containers WHERE id = ?", (container_id,))
            self.view.remove(container_id)

    def list(self) -> builtins.list[Container]:
        """Every container, newest first, decoded from the store (objects the caller may
        change and write back; a listing reads ``entries`` instead)."""
        rows = self.meta.query(f"SELECT {_COLUMNS} FROM containers ORDER BY created_ns DESC")
        return [_row_to_container(r) for r in rows]

    def entries(self) -> tuple[ViewEntry, ...]:
        """Every container from the in-memory view, newest first, each with its version:
        shared read-only snapshots (no SQLite, no decoding)."""
        return self.view.entries()

    def get(self, container_id: str) -> Container:
        """A container by full ID."""
        row = self.meta.query_one(
            f"SELECT {_COLUMNS} FROM containers WHERE id = ?", (container_id,)
        )
        if row is None:
            raise NotFound(f"No such container: {container_id}")
        return _row_to_container(row)

    def names(self) -> set[str]:
        """Every container name."""
        return {r["name"] for r in self.meta.query("SELECT name FROM containers")}

    def resolve(self, text: str) -> Container:
        """A container by full ID, name (with or without a leading /), or unique ID prefix."""
        name = text.removeprefix("/")
        row = self.meta.query_one(
            f"SELECT {_COLUMNS} FROM containers WHERE id = ? OR name = ?", (text, name)
        )
        if row is not None:
            return _row_to_container(row)
        if text and all(ch in "0123456789abcdef" for ch in text):
            rows = self.meta.query(
                f"SELECT {_COLUMNS} FROM containers WHERE id LIKE ?", (f"{text}%",)
            )
            if len(rows) == 1:
                return _row_to_container(rows[0])
            if len(rows) > 1:
                raise Conflict(f"multiple containers found with provided prefix: {text}")
        raise NotFound(f"No such container: {text}")

    def using_image(self, image_id: str) -> builtins.list[Container]:
        """Containers created from an image."""
        rows = self.meta.query(f"SELECT {_COLUMNS} FROM containers WHERE image_id = ?", (image_id,))
        return [_row_to_container(r) for r in rows]

    def volume_users(self, name: str) -> builtins.list[tuple[str, bool]]:
        """(ID, running) of the containers whose mounts use volume ``name``."""
        return [(e.container.id, e.container.state.running) for e in self.view.entries()
                if any(m.type == "volume" and m.name == name for m in e.container.mounts)]

    def in_pod(self, pod_id: str) -> builtins.list[Container]:
        """The members of a pod."""
        rows = self.meta.query(f"SELECT {_COLUMNS} FROM containers WHERE pod_id = ?", (pod_id,))
        return [_row_to_container(r) for r in rows]

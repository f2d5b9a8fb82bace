"""Container records in the metadata store."""

from __future__ import annotations

from servin.api.servin.v1 import containers_pb2
from servin.engine.containers.model import Container, ContainerState
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict, NotFound

_COLUMNS = "id, name, image_ref, image_id, spec, created_ns, state, snapshot_chain"


def _row_to_container(row: object) -> Container:
    spec = containers_pb2.ContainerSpec()
    spec.ParseFromString(row["spec"])  # type: ignore[index]
    return Container(
        id=row["id"],
        name=row["name"],
        image_ref=row["image_ref"],  # type: ignore[index]
        image_id=row["image_id"],
        spec=spec,
        created_ns=row["created_ns"],  # type: ignore[index]
        state=ContainerState.from_json(row["state"]),  # type: ignore[index]
        snapshot_chain=row["snapshot_chain"],  # type: ignore[index]
    )


class ContainerStore:
    """Queries and updates of container records."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    def add(self, c: Container) -> None:
        """Record a new container; Conflict if its name is taken."""
        row = self.meta.query_one("SELECT id FROM containers WHERE name = ?", (c.name,))
        if row is not None:
            raise Conflict(
                f'Conflict. The container name "/{c.name}" is already in use by container '
                f'"{row["id"]}". You have to remove (or rename) that container to be able to '
                "reuse that name."
            )
        with self.meta.transaction() as db:
            db.execute(
                f"INSERT INTO containers ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    c.id,
                    c.name,
                    c.image_ref,
                    c.image_id,
                    c.spec.SerializeToString(),
                    c.created_ns,
                    c.state.to_json(),
                    c.snapshot_chain,
                ),
            )

    def save_state(self, c: Container) -> None:
        """Persist the container's state."""
        with self.meta.transaction() as db:
            db.execute("UPDATE containers SET state = ? WHERE id = ?", (c.state.to_json(), c.id))

    def save_spec(self, c: Container) -> None:
        """Persist the container's (updated) spec."""
        with self.meta.transaction() as db:
            db.execute("UPDATE containers SET spec = ? WHERE id = ?",
                       (c.spec.SerializeToString(), c.id))

    def rename(self, c: Container, new_name: str) -> None:
        """Change the container's name."""
        with self.meta.transaction() as db:
            db.execute("UPDATE containers SET name = ? WHERE id = ?", (new_name, c.id))
        c.name = new_name

    def delete(self, container_id: str) -> None:
        """Forget a container."""
        with self.meta.transaction() as db:
            db.execute("DELETE FROM containers WHERE id = ?", (container_id,))

    def list(self) -> list[Container]:
        """Every container, newest first."""
        rows = self.meta.query(f"SELECT {_COLUMNS} FROM containers ORDER BY created_ns DESC")
        return [_row_to_container(r) for r in rows]

    def get(self, container_id: str) -> Container:
        """A container by full ID."""
        row = self.meta.query_one(
            f"SELECT {_COLUMNS} FROM containers WHERE id = ?", (container_id,)
        )
        if row is None:
            raise NotFound(f"No such container: {container_id}")
        return _row_to_container(row)

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

    def using_image(self, image_id: str) -> list[Container]:
        """Containers created from an image."""
        rows = self.meta.query(f"SELECT {_COLUMNS} FROM containers WHERE image_id = ?", (image_id,))
        return [_row_to_container(r) for r in rows]

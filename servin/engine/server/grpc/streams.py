"""Client-streamed uploads of servin.v1 (import, volume import, cp into a container)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Protocol, TypeVar


class _Upload(Protocol):
    @property
    def data(self) -> bytes: ...


U = TypeVar("U", bound=_Upload)


async def split_upload(messages: AsyncIterator[U]) -> tuple[U | None, AsyncIterator[bytes]]:
    """A client-streamed upload: its first message (which names what the upload is for; None
    when the stream is empty) and an iterator over the data of every message, first included."""
    first = await anext(aiter(messages), None)

    async def chunks() -> AsyncIterator[bytes]:
        if first is not None and first.data:
            yield first.data
        async for msg in messages:
            if msg.data:
                yield msg.data

    return first, chunks()

"""The client a command uses, opened once per invocation from the global options."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from servin.client.sync import Client


def get_client(ctx: click.Context | None = None) -> Client:
    """The invocation's client (connected lazily, closed when the command ends)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    root.ensure_object(dict)
    client = root.obj.get("client")
    if client is None:
        from servin.client.sync import Client

        client = Client(root.obj.get("host"))
        root.obj["client"] = client
        root.call_on_close(client.close)
    return client

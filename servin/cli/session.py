"""The client a command uses, opened once per invocation from the global options."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from servin.client.hosts import Target
    from servin.client.sync import Client


def target(ctx: click.Context | None = None) -> Target:
    """The daemon the global options (-H, --context, --tls*) and the environment lead to.

    Read from the root command's parsed parameters, which exist during shell completion too
    (when the root's callback does not run).
    """
    from servin.client.hosts import default_tls, resolve_target

    ctx = ctx or click.get_current_context()
    p = ctx.find_root().params
    apply_config_dir(ctx)
    tls = None
    if p.get("tls") or p.get("tlsverify") or p.get("tlscacert") or p.get("tlscert") \
            or p.get("tlskey"):
        # A CA is only ever for verifying: giving one means --tlsverify.
        tls = default_tls(
            bool(p.get("tlsverify") or p.get("tlscacert")),
            p.get("tlscacert") or "", p.get("tlscert") or "", p.get("tlskey") or "",
        )
    return resolve_target(p.get("host"), p.get("context"), tls)


def apply_config_dir(ctx: click.Context) -> None:
    """Honour ``--config DIR`` also where the root callback did not run (shell completion)."""
    import os

    config_dir = ctx.find_root().params.get("config_dir")
    if config_dir:
        os.environ["SERVIN_CONFIG"] = config_dir


def get_client(ctx: click.Context | None = None) -> Client:
    """The invocation's client (connected lazily, closed when the command ends)."""
    ctx = ctx or click.get_current_context()
    root = ctx.find_root()
    root.ensure_object(dict)
    client: Client | None = root.obj.get("client")
    if client is None:
        from servin.client.sync import Client

        client = Client(target(ctx))
        root.obj["client"] = client
        root.call_on_close(client.close)
    return client

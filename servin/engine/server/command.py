"""``servin daemon`` (and ``servind``): run the engine in the foreground.

The command lives with the server, not in the CLI package (the CLI never imports the
engine); the CLI's command table names it by module path and imports it only when it runs.
"""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    help="Persistent state directory (default /var/lib/servin)",
)
@click.option(
    "--exec-root",
    type=click.Path(path_type=Path),
    help="Volatile state directory (default /run/servin)",
)
@click.option(
    "--host",
    "hosts",
    multiple=True,
    metavar="URL",
    help="Listen address, unix:///path or tcp://host:port (repeatable)",
)
@click.option(
    "--docker-host",
    "docker_hosts",
    multiple=True,
    metavar="URL",
    help="Docker Engine API address, unix:///path or tcp://host:port (repeatable; default "
    "unix://<exec-root>/docker.sock)",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    help="Config file (default /etc/servin/config.toml)",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option("--log-format", type=click.Choice(["auto", "text", "json"]))
@click.option("--default-runtime", help="OCI runtime for new containers: native, runc, crun")
@click.option("--bridge-name", help="Linux bridge of the default network (default servin0)")
@click.option("--default-subnet", help="Subnet of the default network (default 10.88.0.0/16)")
@click.option("--address-pool", help="Pool for user networks' subnets (default 10.89.0.0/16)")
@click.option("--address-pool-size", type=int, help="Prefix length carved from the pool (24)")
@click.option("--firewall-table", help="nftables table of this daemon (default from --root)")
@click.option("--tlscert", metavar="FILE", help="TLS certificate of tcp:// hosts")
@click.option("--tlskey", metavar="FILE", help="TLS key of tcp:// hosts")
@click.option("--tlscacert", metavar="FILE", help="CA that client certificates must be signed by")
@click.option("--tlsverify", is_flag=True, default=None,
              help="Require client certificates signed by --tlscacert")
@click.option("--streaming-address", metavar="IP",
              help="Address of the CRI streaming server (default 127.0.0.1)")
@click.option("--streaming-port", type=int, metavar="PORT",
              help="Port of the CRI streaming server (default 10010; 0: any free port)")
def daemon(
    root: Path | None,
    exec_root: Path | None,
    hosts: tuple[str, ...],
    docker_hosts: tuple[str, ...],
    config_path: Path | None,
    log_level: str | None,
    log_format: str | None,
    default_runtime: str | None,
    bridge_name: str | None,
    default_subnet: str | None,
    address_pool: str | None,
    address_pool_size: int | None,
    firewall_table: str | None,
    tlscert: str | None,
    tlskey: str | None,
    tlscacert: str | None,
    tlsverify: bool | None,
    streaming_address: str | None,
    streaming_port: int | None,
) -> None:
    """Run the Servin engine daemon in the foreground."""
    import os

    from servin.engine.config import load_config
    from servin.engine.logging import setup_logging
    from servin.engine.server.daemon import run_daemon
    from servin.errors import PermissionDenied

    config = load_config(
        config_path,
        {
            "root": root,
            "exec_root": exec_root,
            "hosts": hosts,
            "docker_hosts": docker_hosts,
            "log_level": log_level,
            "log_format": log_format,
            "default_runtime": default_runtime,
            "bridge_name": bridge_name,
            "default_network_subnet": default_subnet,
            "address_pool": address_pool,
            "address_pool_size": address_pool_size,
            "firewall_table": firewall_table,
            "tls_cert": tlscert and str(Path(tlscert).absolute()),
            "tls_key": tlskey and str(Path(tlskey).absolute()),
            "tls_ca": tlscacert and str(Path(tlscacert).absolute()),
            "tls_verify": tlsverify,
            "streaming_address": streaming_address,
            "streaming_port": streaming_port,
        },
    )
    if os.geteuid() != 0:
        raise PermissionDenied("the servin daemon needs root (run it with sudo)")
    setup_logging(config.log_level, config.log_format)
    run_daemon(config)

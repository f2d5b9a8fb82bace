"""Registries for the tests (one plain, one TLS + htpasswd) and daemons configured for them."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon import DaemonProcess, short_tmpdir
from tests.registry.registryd import Registry, start_registry

USER, PASSWORD = "tester", "s3cret-pass"


@pytest.fixture(scope="session")
def plain_registry() -> Iterator[Registry]:
    """A plain-HTTP registry on 127.0.0.1 (no auth)."""
    reg = start_registry(short_tmpdir("sv-reg-"))
    try:
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="session")
def tls_registry() -> Iterator[Registry]:
    """A registry on 127.0.0.1 with TLS (its own CA) and htpasswd basic auth."""
    reg = start_registry(short_tmpdir("sv-regtls-"), tls=True, user=USER, password=PASSWORD)
    try:
        yield reg
    finally:
        reg.stop()


def write_config(base: Path, tls_registry: Registry, extra: str = "") -> Path:
    """A daemon config whose certs.d trusts the TLS registry's CA."""
    certs = base / "certs.d"
    host_dir = certs / tls_registry.host
    host_dir.mkdir(parents=True)
    assert tls_registry.ca is not None
    shutil.copy(tls_registry.ca, host_dir / "ca.crt")
    config = base / "config.toml"
    config.write_text(f'[registries]\ncerts_dir = "{certs}"\n{extra}')
    return config


def start_daemon(tls_registry: Registry, extra: str = "") -> DaemonProcess:
    base = short_tmpdir()
    config = write_config(base, tls_registry, extra)
    return DaemonProcess(base, ["--config", str(config)]).start()


@contextlib.contextmanager
def trusting_daemon(tls_registry: Registry, busybox_tar: Path) -> Iterator[DaemonProcess]:
    """A daemon that trusts the TLS registry's CA, with busybox imported as ``busybox``."""
    d = start_daemon(tls_registry)
    try:
        d.cli("import", "-c", 'CMD ["sh"]', str(busybox_tar), "busybox", check=True)
        yield d
    finally:
        d.cleanup()


@pytest.fixture(scope="module")
def servin(tls_registry: Registry, busybox_tar: Path) -> Iterator[DaemonProcess]:
    """A daemon (shared by a module's tests) with busybox imported as ``busybox``."""
    with trusting_daemon(tls_registry, busybox_tar) as d:
        yield d


@pytest.fixture
def auth_dir() -> Iterator[Path]:
    """A private SERVIN_CONFIG directory for the client's stored credentials."""
    path = short_tmpdir("sv-auth-")
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)

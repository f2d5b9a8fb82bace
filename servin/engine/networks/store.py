"""Network and endpoint records in the metadata store; endpoints are the IPAM records.

An address is handed out inside the same SQLite transaction that records it (and the table
has UNIQUE(network_id, address)), so a crash at any instant can never lead to a duplicate.
"""

from __future__ import annotations

import builtins
import ipaddress
import json
import sqlite3
from typing import Any

from servin.engine.networks import ipam
from servin.engine.networks.model import Endpoint, Network, mac_for
from servin.engine.store.metadata import MetadataStore
from servin.errors import Conflict, NotFound

_NET_COLUMNS = (
    "id, name, driver, subnet, gateway, ip_range, internal, bridge, labels, options, builtin,"
    " created_ns"
)
_EP_COLUMNS = "network_id, container_id, address, mac, aliases, static"


def _network(row: Any) -> Network:
    return Network(
        id=row["id"], name=row["name"], driver=row["driver"], subnet=row["subnet"],
        gateway=row["gateway"], ip_range=row["ip_range"], internal=bool(row["internal"]),
        bridge=row["bridge"], labels=json.loads(row["labels"]),
        options=json.loads(row["options"]), builtin=bool(row["builtin"]),
        created_ns=row["created_ns"],
    )


def _endpoint(row: Any) -> Endpoint:
    return Endpoint(
        network_id=row["network_id"], container_id=row["container_id"], address=row["address"],
        mac=row["mac"], aliases=json.loads(row["aliases"]), static=bool(row["static"]),
    )


class NetworkStore:
    """Queries and updates of networks and endpoints (blocking; call from worker threads)."""

    def __init__(self, meta: MetadataStore) -> None:
        self.meta = meta

    # -- networks ------------------------------------------------------------------------

    def add(self, n: Network) -> None:
        """Record a network; Conflict if the name is taken or the subnet overlaps another."""
        with self.meta.transaction() as db:
            if db.execute("SELECT 1 FROM networks WHERE name = ?", (n.name,)).fetchone():
                raise Conflict(f"network with name {n.name} already exists")
            if n.subnet:
                rows = db.execute("SELECT name, subnet FROM networks").fetchall()
                ipam.check_overlap(ipaddress.IPv4Network(n.subnet),
                                   [(r["name"], r["subnet"]) for r in rows])
            db.execute(
                f"INSERT INTO networks ({_NET_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (n.id, n.name, n.driver, n.subnet, n.gateway, n.ip_range, int(n.internal),
                 n.bridge, json.dumps(n.labels), json.dumps(n.options), int(n.builtin),
                 n.created_ns),
            )

    def update_builtin(self, n: Network) -> None:
        """Rewrite a built-in network's subnet and bridge (the config may have changed)."""
        with self.meta.transaction() as db:
            db.execute(
                "UPDATE networks SET subnet = ?, gateway = ?, bridge = ? WHERE id = ?",
                (n.subnet, n.gateway, n.bridge, n.id),
            )

    def delete(self, network_id: str) -> None:
        """Forget a network; Conflict while it has endpoints."""
        try:
            with self.meta.transaction() as db:
                db.execute("DELETE FROM networks WHERE id = ?", (network_id,))
        except sqlite3.IntegrityError:
            raise Conflict("network has active endpoints") from None

    def list(self) -> builtins.list[Network]:
        """Every network, oldest first."""
        rows = self.meta.query(f"SELECT {_NET_COLUMNS} FROM networks ORDER BY created_ns")
        return [_network(r) for r in rows]

    def get(self, network_id: str) -> Network:
        """A network by full ID."""
        row = self.meta.query_one(f"SELECT {_NET_COLUMNS} FROM networks WHERE id = ?",
                                  (network_id,))
        if row is None:
            raise NotFound(f"network {network_id} not found")
        return _network(row)

    def resolve(self, text: str) -> Network:
        """A network by ID, name, or unique ID prefix."""
        row = self.meta.query_one(
            f"SELECT {_NET_COLUMNS} FROM networks WHERE id = ? OR name = ?", (text, text)
        )
        if row is not None:
            return _network(row)
        if text and all(ch in "0123456789abcdef" for ch in text):
            rows = self.meta.query(f"SELECT {_NET_COLUMNS} FROM networks WHERE id LIKE ?",
                                   (f"{text}%",))
            if len(rows) == 1:
                return _network(rows[0])
            if len(rows) > 1:
                raise Conflict(f"network {text} is ambiguous ({len(rows)} matches found)")
        raise NotFound(f"network {text} not found")

    # -- endpoints (IPAM) ----------------------------------------------------------------

    def allocate(self, n: Network, container_id: str, *, address: str = "",
                 aliases: builtins.list[str] | None = None, mac: str = "") -> Endpoint:
        """Record the container on the network with a free (or the requested) address, and
        the requested MAC (else one derived from the address)."""
        subnet = ipaddress.IPv4Network(n.subnet)
        with self.meta.transaction() as db:
            if db.execute(
                "SELECT 1 FROM network_endpoints WHERE network_id = ? AND container_id = ?",
                (n.id, container_id),
            ).fetchone():
                raise Conflict(f"container {container_id[:12]} is already attached to "
                               f"network {n.name}")
            taken = {r[0] for r in db.execute(
                "SELECT address FROM network_endpoints WHERE network_id = ?", (n.id,))}
            if address:
                chosen = ipam.check_static(subnet, n.gateway, address, taken)
            else:
                chosen = ipam.next_free(subnet, n.gateway, n.ip_range, taken)
            ep = Endpoint(n.id, container_id, chosen, mac.lower() or mac_for(chosen),
                          list(aliases or []),
                          static=bool(address))
            db.execute(
                f"INSERT INTO network_endpoints ({_EP_COLUMNS}) VALUES (?,?,?,?,?,?)",
                (ep.network_id, ep.container_id, ep.address, ep.mac, json.dumps(ep.aliases),
                 int(ep.static)),
            )
        return ep

    def release(self, network_id: str, container_id: str) -> None:
        """Give the container's address on the network back."""
        with self.meta.transaction() as db:
            db.execute(
                "DELETE FROM network_endpoints WHERE network_id = ? AND container_id = ?",
                (network_id, container_id),
            )

    def endpoints_of_container(self, container_id: str) -> builtins.list[Endpoint]:
        """The container's endpoints, in the order they were made."""
        rows = self.meta.query(
            f"SELECT {_EP_COLUMNS} FROM network_endpoints WHERE container_id = ? ORDER BY rowid",
            (container_id,),
        )
        return [_endpoint(r) for r in rows]

    def endpoints_of_network(self, network_id: str) -> builtins.list[Endpoint]:
        """Every endpoint on a network."""
        rows = self.meta.query(
            f"SELECT {_EP_COLUMNS} FROM network_endpoints WHERE network_id = ? ORDER BY rowid",
            (network_id,),
        )
        return [_endpoint(r) for r in rows]

    def all_endpoints(self) -> builtins.list[Endpoint]:
        """Every endpoint of every network."""
        rows = self.meta.query(f"SELECT {_EP_COLUMNS} FROM network_endpoints ORDER BY rowid")
        return [_endpoint(r) for r in rows]

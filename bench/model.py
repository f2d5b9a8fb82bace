"""What a scenario reports: rows of Servin's measure beside one peer's, and notes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.measure import Measure


@dataclass
class Row:
    """One metric: Servin's samples and (optionally) one peer's, measured in the same run.

    ``ratio`` is Servin's median over the peer's: below 1 Servin is faster or smaller
    (every metric here is a time, a size or a CPU share, where lower is better).
    """

    metric: str
    servin: Measure | None
    peer: str = ""
    peer_measure: Measure | None = None
    target: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if not (self.servin and self.servin.samples and self.peer_measure):
            return None
        if not self.peer_measure.samples or self.peer_measure.median == 0:
            return None
        return self.servin.median / self.peer_measure.median

    def to_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "servin": self.servin.to_json() if self.servin else None,
            "peer": self.peer,
            "peer_measure": self.peer_measure.to_json() if self.peer_measure else None,
            "ratio": self.ratio,
            "target": self.target,
            "note": self.note,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Row:
        return cls(
            metric=data["metric"],
            servin=Measure.from_json(data["servin"]) if data["servin"] else None,
            peer=data["peer"],
            peer_measure=(
                Measure.from_json(data["peer_measure"]) if data["peer_measure"] else None
            ),
            target=data["target"],
            note=data["note"],
        )


@dataclass
class ScenarioResult:
    """Everything one scenario measured."""

    name: str
    title: str
    quick: bool
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def add(self, row: Row) -> Row:
        self.rows.append(row)
        return row

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "quick": self.quick,
            "rows": [r.to_json() for r in self.rows],
            "notes": self.notes,
            "seconds": self.seconds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        return cls(
            name=data["name"],
            title=data["title"],
            quick=data["quick"],
            rows=[Row.from_json(r) for r in data["rows"]],
            notes=list(data["notes"]),
            seconds=data.get("seconds", 0.0),
        )

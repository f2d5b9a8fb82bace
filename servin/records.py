"""``Record``: what ``typing.NamedTuple`` gives at run time, without importing ``typing``.

``typing`` (with ``re`` and ``enum``) costs the short CLI commands ~4 ms of start-up, and the
records they touch (errors, host addresses, endpoints, flags) need only a tuple with named
fields. Modules write ``if TYPE_CHECKING: from typing import NamedTuple as Record`` so mypy
checks them as real NamedTuples, and ``else: from servin.records import Record`` at run time.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

_MISSING = object()


def _getter(index: int) -> Callable[[tuple[object, ...]], object]:
    def get(self: tuple[object, ...]) -> object:
        return tuple.__getitem__(self, index)
    return get


class _RecordMeta(type):
    """Turns a class body's annotated fields into a slotted tuple subclass."""

    def __new__(mcs, name: str, bases: tuple[type, ...], ns: dict[str, object]) -> _RecordMeta:
        if ns.get("__module__") == __name__:  # Record itself
            return super().__new__(mcs, name, bases, ns)
        # a class body's annotations: always a dict (of strings, with the __future__ import)
        annotations: dict[str, object] = ns.get("__annotations__", {})  # type: ignore[assignment]
        fields = tuple(annotations)  # (ClassVar annotations would count too: none use them)
        defaults = {f: ns.pop(f) for f in fields if f in ns}
        body = dict(ns, __slots__=(), _fields=fields, _field_defaults=defaults)
        for i, f in enumerate(fields):
            body[f] = property(_getter(i), doc=f"field {f}")
        return super().__new__(mcs, name, (_RecordBase,), body)


class _RecordBase(tuple):  # type: ignore[type-arg]  # any fields, as NamedTuple's base
    __slots__ = ()
    _fields: tuple[str, ...] = ()
    _field_defaults: dict[str, object] = {}

    def __new__(cls, *args: object, **kwargs: object) -> _RecordBase:
        fields = cls._fields
        if len(args) > len(fields):
            raise TypeError(f"{cls.__name__} takes {len(fields)} fields, got {len(args)}")
        values = list(args)
        for f in fields[len(args):]:
            value = kwargs.pop(f, _MISSING)
            if value is _MISSING:
                value = cls._field_defaults.get(f, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{cls.__name__}: missing field {f!r}")
            values.append(value)
        if kwargs:
            raise TypeError(f"{cls.__name__}: unexpected field(s) {', '.join(kwargs)}")
        return tuple.__new__(cls, values)

    def __repr__(self) -> str:
        pairs = ", ".join(f"{f}={v!r}" for f, v in zip(self._fields, self, strict=True))
        return f"{type(self).__name__}({pairs})"

    def __getnewargs__(self) -> tuple[object, ...]:
        return tuple(self)

    def _replace(self, **changes: object) -> _RecordBase:
        values = [changes.pop(f, v) for f, v in zip(self._fields, self, strict=True)]
        return type(self)(*values, **changes)

    def _asdict(self) -> dict[str, object]:
        return dict(zip(self._fields, self, strict=True))


class Record(metaclass=_RecordMeta):
    """Base of a run-time record: ``class Point(Record): x: int; y: int = 0``."""

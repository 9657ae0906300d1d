"""List element type compatibility: a value's type signature and their least supertype."""

from __future__ import annotations

import operator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class _Sig:
    """A value's type, reduced to what decides list compatibility (lengths always widen)."""

    kind: str
    children: tuple[_Sig | None, ...] = ()  # None is NoType: the inside of `none`, `(list)`, ...
    names: tuple[str, ...] = ()


class _Mismatch(Exception):
    """Two list elements have no common supertype."""


def _supertype(a: _Sig | None, b: _Sig | None) -> _Sig | None:
    """Least supertype, as the node computes it for list elements; raises _Mismatch."""
    if a is None or a is b:
        return b
    if b is None:
        return a
    if a.kind != b.kind:
        raise _Mismatch(f"{a.kind} and {b.kind} have no common type")
    if a.names != b.names:
        raise _Mismatch(f"tuple keys {a.names} and {b.names} differ")
    merged = tuple(map(_supertype, a.children, b.children))  # same kind: same child count
    if all(map(operator.is_, merged, a.children)):
        return a  # nothing widened: keep the running type, so long lists allocate nothing
    return _Sig(a.kind, merged, a.names)


_INT, _UINT, _BOOL = _Sig("int"), _Sig("uint"), _Sig("bool")
_BUFFER, _ASCII, _UTF8, _PRINCIPAL = _Sig("buffer"), _Sig("ascii"), _Sig("utf8"), _Sig("principal")
_NONE = _Sig("optional", (None,))

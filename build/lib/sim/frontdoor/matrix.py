"""``compare:`` — the grid of variants one scenario file declares.

``compare`` maps key paths (`sim.frontdoor.keypath` syntax, ``*`` = every element) to lists of
values; the variants are the grid product, in file order with the last key varying
fastest.  Variant ids are ``v0, v1, ...`` (zero-padded to equal width).  A variant is the
base document with each path set to that variant's value; paths starting with
``topology.`` apply before the topology generator runs, all others after it.
A later issue (sweeps with replications) builds on `Factor` and `grid`.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

from sim.frontdoor import keypath


@dataclass(frozen=True)
class Factor:
    name: str          # the key path as written in the file: the factor's column name
    path: tuple        # parsed key path
    values: tuple      # the levels


@dataclass(frozen=True)
class Cell:
    """One variant of the grid: id and the value of every factor."""
    id: str
    levels: dict       # factor name -> value

    def label(self) -> str:
        return ", ".join(f"{k}={column_value(v)}" for k, v in self.levels.items())


class CompareError(ValueError):
    def __init__(self, key: Any, message: str, index: int | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.index = index


def factors(compare: Any) -> list[Factor]:
    """Validate and parse a ``compare:`` mapping."""
    if compare is None:
        return []
    if not isinstance(compare, dict):
        raise CompareError(None, "compare must be a mapping of key paths to lists of values, "
                                 "e.g. {hosts.*.scheme: [host, l2-routed]}")
    out = []
    for key, values in compare.items():
        if not isinstance(key, str):
            raise CompareError(key, f"compare key {key!r} must be a key path such as hosts.*.scheme")
        try:
            path = keypath.parse(key)
        except keypath.KeyPathError as e:
            raise CompareError(key, str(e)) from None
        if not isinstance(values, list) or not values:
            raise CompareError(key, f"compare.{key} must be a non-empty list of values")
        out.append(Factor(key, path, tuple(values)))
    return out


def grid(fs: list[Factor]) -> list[Cell]:
    """Every combination of the factors' levels (one empty cell when there are none)."""
    combos = list(itertools.product(*(f.values for f in fs)))
    width = len(str(len(combos) - 1))
    return [Cell(f"v{i:0{width}d}", {f.name: v for f, v in zip(fs, combo)}) for i, combo in enumerate(combos)]


def column_value(v: Any) -> Any:
    """A level as a table cell: scalars as-is, lists/mappings as compact JSON."""
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    return json.dumps(v, sort_keys=True, separators=(",", ":"))

"""The ``sweep:`` block of a scenario file -> the sweep's points.

Format (top level of the scenario file)::

    sweep:
      replications: 5                  # independent runs per point (default 1)
      grid:                            # grid product, like compare: (last key fastest)
        hosts.*.scheme: [host, l2-routed]
        flows.*.rate_pps: [50000, 200000, 400000]
      zip:                             # optional: equal-length lists varied together,
        hosts.*.namespaces: [1, 10]    # as one more (outermost) axis of the grid
        hosts.*.cores: [1, 2]

Shorthand: a ``sweep:`` mapping without ``grid``/``zip`` keys is the grid (beside an
optional ``replications``).  Key paths are those of ``--set`` and ``compare:``
(`sim.frontdoor.keypath`); a file may also keep its own ``compare:`` grid, whose factors then become
swept keys too.  ``--set sweep.replications=1`` and ``--set sweep.grid.KEY=[...]`` override
the block like any other value.

Expansion reuses the front door: `sim.frontdoor.loader.read_document` takes the block out of the file
(keeping its line numbers), and each swept key becomes a ``compare:`` factor whose values
point at their lines in the block; `sim.frontdoor.loader.expand` applies them after ``extends:``,
``--set`` and the topology generator, and validates every variant.  A point is a variant x
replication; replication ``r`` runs with ``run.replication = r`` and the file's
``run.seed``, so every replication is an independent random stream (the model seeds from
(seed, replication)) and the same whichever executor runs it.  A variant that fails
validation becomes a `Rejected` point (reported like a failed run) instead of stopping the
sweep.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from sim.frontdoor import matrix
from sim.frontdoor.limits import exceeds
from sim.frontdoor.loader import Document, ScenarioError, Variant, limits_of, read_document
from sim.frontdoor.loader import expand as expand_variants
from sim.frontdoor.yamlpos import Positions
from sim.sweep.keys import key_material, point_key, resolved_config


class SweepError(ValueError):
    """Bad ``sweep:`` block (or no block at all)."""


@dataclass(frozen=True)
class SweepSpec:
    grid: tuple[matrix.Factor, ...]
    zipped: tuple[matrix.Factor, ...]
    replications: int
    grid_at: tuple = ("sweep", "grid")   # where the grid's keys are in the file (shorthand: ("sweep",))

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.zipped] + [f.name for f in self.grid]


@dataclass
class Point:
    """One unit of work: a validated variant at one replication."""
    index: int
    levels: dict                 # factor name -> table value (swept keys and compare: keys)
    replication: int
    config: dict                 # resolved scenario (JSON-able), run.replication set
    profile: dict                # resolved cost profile (JSON-able)
    key: str = ""

    @property
    def id(self) -> str:
        return f"p{self.index:05d}-r{self.replication}"

    def task(self) -> dict:
        return {"key": self.key, "id": self.id, "levels": self.levels, "replication": self.replication,
                "config": self.config, "profile": self.profile}


@dataclass
class Rejected:
    """A variant whose configuration does not validate: every replication of it fails."""
    levels: dict
    replication: int
    error: str

    @property
    def key(self) -> str:
        return point_key({"rejected": self.levels, "replication": self.replication})


@dataclass
class Expanded:
    name: str
    spec: SweepSpec
    factor_names: list[str]      # partition columns, in order
    points: list[Point] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    path: str = ""               # the scenario file
    description: str = ""
    resolved_yaml: str = ""      # the first variant's resolved scenario with the grid as compare:


def _fail(pos: Optional[Positions], path: tuple, message: str) -> SweepError:
    where = pos.lookup(path) if pos is not None else None
    return SweepError(f"{where}: {message}" if where is not None else message)


def parse(block: Any, pos: Optional[Positions] = None) -> SweepSpec:
    """Check the shape of a ``sweep:`` block; messages start with FILE:LINE when `pos` (the
    document's positions, `sim.frontdoor.loader.Document.positions`) is given."""
    if not isinstance(block, dict) or not block:
        raise _fail(pos, ("sweep",), "sweep: must be a mapping, e.g. "
                                     "{replications: 3, grid: {flows.*.rate_pps: [1e4, 1e5]}}")
    grid_at: tuple[str, ...] = ("sweep", "grid")
    if not {"grid", "zip"} & set(block):
        shorthand = {k: v for k, v in block.items() if k != "replications"}
        block = {"grid": shorthand, **({"replications": block["replications"]} if "replications" in block else {})}
        grid_at = ("sweep",)
    extra = set(block) - {"grid", "zip", "replications"}
    if extra:
        raise _fail(pos, ("sweep", sorted(extra, key=str)[0]),
                    f"sweep: unknown key(s) {sorted(extra, key=str)}; allowed: grid, zip, replications")
    reps = block.get("replications", 1)
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
        raise _fail(pos, ("sweep", "replications"), f"sweep.replications must be a whole number >= 1, not {reps!r}")
    grid: list[matrix.Factor] = []
    zipped: list[matrix.Factor] = []
    for part, at in (("grid", grid_at), ("zip", ("sweep", "zip"))):
        if block.get(part) is None:
            continue
        try:
            (grid if part == "grid" else zipped).extend(matrix.factors(block[part]))
        except matrix.CompareError as e:
            raise _fail(pos, at if e.key is None else at + (e.key,),
                        f"sweep: {str(e).replace('compare', 'sweep', 1)}") from None
    if len({len(f.values) for f in zipped}) > 1:
        raise _fail(pos, ("sweep", "zip"), "sweep.zip: the lists must have the same length ("
                    + ", ".join(f"{f.name}: {len(f.values)}" for f in zipped) + ")")
    dup = {f.name for f in grid} & {f.name for f in zipped}
    if dup:
        raise _fail(pos, ("sweep", "zip", sorted(dup)[0]), f"sweep: key(s) {sorted(dup)} both in grid and zip")
    return SweepSpec(tuple(grid), tuple(zipped), reps, grid_at)


def _with_axes(document: Document, spec: SweepSpec, row_index: int, row: tuple) -> Document:
    """The document with the swept keys as ``compare:`` factors: one value of each zip list
    (row `row_index`) and the whole grid; their positions are their lines in the block."""
    data = copy.deepcopy(document.data)
    pos = Positions(document.positions)
    compare = data.setdefault("compare", {})
    if compare is None:
        compare = data["compare"] = {}
    if not isinstance(compare, dict):
        return document                    # the loader reports the bad compare: with its line

    def place(name: str, values: list, at: tuple, indices: list[int]) -> None:
        compare[name] = values
        pos[("compare", name)] = pos.lookup(at)
        for i, j in enumerate(indices):
            pos[("compare", name, i)] = pos.lookup(at + (j,))

    for f, v in zip(spec.zipped, row):
        place(f.name, [copy.deepcopy(v)], ("sweep", "zip", f.name), [row_index])
    for f in spec.grid:
        place(f.name, copy.deepcopy(list(f.values)), spec.grid_at + (f.name,), list(range(len(f.values))))
    return Document(document.path, document.name, data, pos, document.sweep)


def expand(path: str | Path, sets: list[str] | tuple = (), seed: Optional[int] = None) -> Expanded:
    """Read SCENARIO's ``sweep:`` block and return every point.  `ScenarioError` for
    problems shared by all points (bad file, bad ``--set``), `SweepError` for a bad block."""
    document = read_document(path, sets, seed)
    if document.sweep is None:
        raise SweepError(f"{path}: no sweep: block (see README, 'Sweeps')")
    return expand_document(document)


def expand_document(document: Document, partial: bool = True) -> Expanded:
    """Every point of `document`: its ``sweep:`` block's grid and replications, or, without a
    block, its ``compare:`` grid at one replication (what ``netns-sim run`` runs).  With
    `partial` a variant that does not validate becomes a `Rejected` point; without, it raises
    `ScenarioError` (``run`` refuses the whole file)."""
    spec = parse(document.sweep, document.positions) if document.sweep is not None else SweepSpec((), (), 1)
    runs = math.prod(len(f.values) for f in spec.grid) * (len(spec.zipped[0].values) if spec.zipped else 1) \
        * spec.replications
    too_many = exceeds("runs of the sweep (points x replications)", runs, "max_sweep_runs",
                       limits_of(document.data, document.positions))
    if too_many:
        raise _fail(document.positions, ("sweep",), f"sweep: {too_many[0]} (fix: {too_many[1]})")
    own = document.data.get("compare")
    clash = set(spec.names) & set(own if isinstance(own, dict) else ())
    if clash:
        raise _fail(document.positions, ("sweep",),
                    f"sweep: key(s) {sorted(clash)} are also under compare:; keep them in one place")
    zip_rows = list(zip(*(f.values for f in spec.zipped))) if spec.zipped else [()]
    variants: list[tuple[dict, Variant]] = []
    rejected_levels: list[tuple[dict, str]] = []
    factor_names: list[str] = []
    first_error: Optional[ScenarioError] = None
    resolved = ""
    for r, row in enumerate(zip_rows):
        loaded = expand_variants(_with_axes(document, spec, r, row), partial=partial)
        factor_names = [f.name for f in loaded.factors]
        variants += [(_levels(loaded.factors, v.cell), v) for v in loaded.variants]
        rejected_levels += [(_levels(loaded.factors, cell), err) for cell, err in loaded.rejected]
        first_error = first_error or loaded.error
        if loaded.variants and not resolved:
            resolved = loaded.resolved_yaml()
    if not variants:                     # nothing validates: bad input, not failed points
        assert first_error is not None   # a point without a variant always has an issue
        raise first_error
    out = Expanded(document.name, spec, factor_names, path=str(document.path),
                   description=str(document.data.get("description", "") or ""), resolved_yaml=resolved)
    for i, (levels, v) in enumerate(variants):
        for r in range(spec.replications):
            cfg, prof = resolved_config(v, r)
            p = Point(i, levels, r, cfg, prof)
            p.key = point_key(key_material(cfg, prof))
            out.points.append(p)
    for levels, err in rejected_levels:
        for r in range(spec.replications):
            out.rejected.append(Rejected(levels, r, err))
    return out


def _levels(factors: list[matrix.Factor], cell: matrix.Cell) -> dict:
    return {f.name: matrix.column_value(cell.levels[f.name]) for f in factors}

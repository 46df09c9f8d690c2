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

Shorthand: a ``sweep:`` mapping without ``grid``/``zip``/``replications`` keys is the grid.
Key paths are those of ``--set`` and ``compare:`` (`sim.keypath`); a file may also keep its
own ``compare:`` grid, whose factors then become swept keys too.

Expansion reuses the front door: the sweep block is taken out of the file, and each swept
key becomes a ``compare:`` factor (`sim.loader.load` applies it after ``extends:``, ``--set``
and the topology generator, and validates every variant).  A point is a variant x
replication; replication ``r`` runs with ``run.replication = r`` and the file's
``run.seed``, so every replication is an independent random stream (the model seeds from
(seed, replication)) and the same whichever executor runs it.  A variant that fails
validation becomes a `Rejected` point (reported like a failed run) instead of stopping the
sweep.
"""

from __future__ import annotations

import itertools
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import yaml

from sim import keypath, matrix
from sim.loader import ScenarioError, Variant, load
from sim.sweep.keys import key_material, point_key, resolved_config


class SweepError(ValueError):
    """Bad ``sweep:`` block (or no block at all)."""


@dataclass(frozen=True)
class SweepSpec:
    grid: tuple[matrix.Factor, ...]
    zipped: tuple[matrix.Factor, ...]
    replications: int

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


def parse(block: Any) -> SweepSpec:
    if not isinstance(block, dict) or not block:
        raise SweepError("sweep: must be a mapping, e.g. {replications: 3, grid: {flows.*.rate_pps: [1e4, 1e5]}}")
    if not {"grid", "zip", "replications"} & set(block):
        block = {"grid": block}
    extra = set(block) - {"grid", "zip", "replications"}
    if extra:
        raise SweepError(f"sweep: unknown key(s) {sorted(extra)}; allowed: grid, zip, replications")
    reps = block.get("replications", 1)
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 1:
        raise SweepError(f"sweep.replications must be a whole number >= 1, not {reps!r}")
    try:
        grid = matrix.factors(block.get("grid") or {}) if block.get("grid") is not None else []
        zipped = matrix.factors(block.get("zip")) if block.get("zip") is not None else []
    except matrix.CompareError as e:
        raise SweepError(f"sweep: {str(e).replace('compare', 'sweep', 1)}") from None
    if len({len(f.values) for f in zipped}) > 1:
        raise SweepError("sweep.zip: the lists must have the same length ("
                         + ", ".join(f"{f.name}: {len(f.values)}" for f in zipped) + ")")
    dup = {f.name for f in grid} & {f.name for f in zipped}
    if dup:
        raise SweepError(f"sweep: key(s) {sorted(dup)} both in grid and zip")
    return SweepSpec(tuple(grid), tuple(zipped), reps)


def _strip_sweep(path: Path) -> tuple[Any, str]:
    """(the sweep block, the file's text with the block blanked out, line numbers kept)."""
    text = path.read_text()
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return None, text                  # the loader reports the syntax error with its line
    if not isinstance(node, yaml.MappingNode) or not isinstance(data, dict) or "sweep" not in data:
        return None, text
    lines = text.splitlines(keepends=True)
    for i, (k, v) in enumerate(node.value):
        if k.value == "sweep":
            first = k.start_mark.line
            nxt = node.value[i + 1][0].start_mark.line if i + 1 < len(node.value) else len(lines)
            for j in range(first, nxt):
                lines[j] = "\n"
    return data["sweep"], "".join(lines)


def _set_value(v: Any) -> str:
    return json.dumps(v)                   # JSON is YAML: --set parses it back unchanged


def _load(path: Path, stripped: str, sets: list[str], seed: Optional[int], name: str):
    """`sim.loader.load` on the file without its sweep block (a hidden sibling, so relative
    ``extends:`` still resolve); messages name the original file."""
    tmp = path.parent / f".sweep-{path.stem}-{os.getpid()}-{uuid.uuid4().hex[:6]}.yaml"
    tmp.write_text(stripped)
    try:
        return load(tmp, [f"name={_set_value(name)}"] + list(sets), seed=seed)
    except ScenarioError as e:
        raise ScenarioError([_rename(i, str(tmp), str(path)) for i in e.issues]) from None
    finally:
        tmp.unlink(missing_ok=True)


def _rename(issue, tmp: str, orig: str):
    from sim.yamlpos import Where
    if issue.where is not None and issue.where.file == tmp:
        issue.where = Where(orig, issue.where.line)
    return issue


def expand(path: str | Path, sets: list[str] | tuple = (), seed: Optional[int] = None) -> Expanded:
    """Read SCENARIO's ``sweep:`` block and return every point.  `ScenarioError` for
    problems shared by all points (bad file, bad ``--set``), `SweepError` for a bad block."""
    path = Path(path)
    if not path.is_file():
        raise SweepError(f"{path}: scenario file not found")
    block, stripped = _strip_sweep(path)
    if block is None:
        raise SweepError(f"{path}: no sweep: block (see README, 'Sweeps')")
    spec = parse(block)
    own = yaml.safe_load(stripped) or {}
    name = str(own.get("name", path.stem)) if isinstance(own, dict) else path.stem
    clash = set(spec.names) & set((own.get("compare") or {}) if isinstance(own, dict) else {})
    if clash:
        raise SweepError(f"sweep: key(s) {sorted(clash)} are also under compare:; keep them in one place")
    zip_rows = list(zip(*(f.values for f in spec.zipped))) if spec.zipped else [()]
    variants: list[tuple[dict, Variant]] = []
    rejected_levels: list[tuple[dict, str, ScenarioError]] = []
    factor_names: list[str] = []
    for row in zip_rows:
        fixed = [f"compare.{f.name}={_set_value([v])}" for f, v in zip(spec.zipped, row)]
        grid = [f"compare.{f.name}={_set_value(list(f.values))}" for f in spec.grid]
        try:
            loaded = _load(path, stripped, list(sets) + fixed + grid, seed, name)
            batch = [(_levels(loaded, v), v) for v in loaded.variants]
            factor_names = [f.name for f in loaded.factors]
        except ScenarioError as whole:
            batch = []
            cells = list(itertools.product(*(f.values for f in spec.grid))) or [()]
            tagged = any(i.variant for i in whole.issues)     # only some variants fail
            for cell in cells:
                levels = {f.name: matrix.column_value(v) for f, v in zip(spec.zipped, row)}
                levels.update({f.name: matrix.column_value(v) for f, v in zip(spec.grid, cell)})
                if not tagged:                                   # every variant fails alike
                    rejected_levels.append((levels, str(whole), whole))
                    continue
                one = [f"compare.{f.name}={_set_value([v])}" for f, v in zip(spec.grid, cell)]
                try:                                             # isolate the failing ones
                    loaded = _load(path, stripped, list(sets) + fixed + one, seed, name)
                except ScenarioError as e:
                    rejected_levels.append((levels, str(e), e))
                    continue
                batch += [(_levels(loaded, v), v) for v in loaded.variants]
                factor_names = [f.name for f in loaded.factors]
        variants += batch
    if not variants:                     # nothing validates: bad input, not failed points
        raise rejected_levels[0][2]
    if not factor_names:
        factor_names = [n for n in spec.names] + [n for n in (own.get("compare") or {}) if n not in spec.names]
    out = Expanded(name, spec, factor_names)
    for i, (levels, v) in enumerate(variants):
        for r in range(spec.replications):
            cfg, prof = resolved_config(v, r)
            p = Point(i, levels, r, cfg, prof)
            p.key = point_key(key_material(cfg, prof))
            out.points.append(p)
    for levels, err, _ in rejected_levels:
        for r in range(spec.replications):
            out.rejected.append(Rejected(levels, r, err))
    return out


def _levels(loaded, v: Variant) -> dict:
    return {f.name: matrix.column_value(v.cell.levels[f.name]) for f in loaded.factors}

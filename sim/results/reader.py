"""Read a result directory (`netns-sim run` or `sweep`), or a directory of several, into frames.

Contract: `load(path) -> Results`.  ``path`` is either a result directory — written by
``netns-sim run`` or ``netns-sim sweep``, which share one layout (`sim.sweep.runner`):
``sweep.json``, ``points.csv``, ``memory.csv``, ``cores.csv``, ``flows.csv``,
``metadata.json``, ``scenario.resolved.yaml`` and the hive-partitioned ``packets/`` dataset —
or a directory whose immediate subdirectories are result directories (several seeds,
parameters varied by hand, ...).  Only the files of the layout are read (README "Result
directory"); simulation objects never are.

Every frame gets a ``run_dir`` column (the result directory's name) so run ids from
different runs never collide.  `Results.factors` lists the columns that vary between
conditions: the ``compare:`` factor columns of every run, plus, for a directory of several
runs, every scalar key of ``scenario.resolved.yaml`` whose value differs between runs (named
by its key path, e.g. ``hosts.0.cores``) — so a sweep done as separate runs is compared
across the varied parameter exactly like a ``compare:`` grid.  ``replication`` and ``seed``
are never factors: rows that differ only in them are replications of one condition.

Units are those of the files: ns, pps, packets, bytes, fraction.
"""

from __future__ import annotations

import json
import numbers
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from sim.yamlload import safe_load

TABLES = ("points.csv", "memory.csv", "cores.csv", "flows.csv")
BATCH_ROWS = 16384           # packet records held at once by `Results.iter_packets`
PACKET_ID_COLUMNS = ["run_id", "replication", "seed", "scheme", "trip", "t_sent_ns", "status"]


@dataclass
class RunDir:
    """One result directory: its path, metadata.json and scenario.resolved.yaml."""

    path: Path
    metadata: dict
    resolved: dict
    resolved_text: str

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def warmup_ns(self) -> float:
        return float((self.resolved.get("run") or {}).get("warmup_ns", 0.0) or 0.0)


@dataclass
class Results:
    """Frames of one or several result directories (see module docstring)."""

    path: Path
    runs: list[RunDir]
    summary: pd.DataFrame
    memory: pd.DataFrame
    cores: pd.DataFrame
    flows: pd.DataFrame
    factors: list[str]
    _packets: pd.DataFrame | None = field(default=None, repr=False)
    # directory of runs: scenario keys that differ between runs -> {run_dir: value} (see `load`)
    _run_factor_values: dict = field(default_factory=dict, repr=False)

    @property
    def multi(self) -> bool:
        return len(self.runs) > 1

    def packet_columns(self) -> list[str]:
        """Column names of the packet records (swept keys included)."""
        return _dataset(self.runs[0].path).schema.names if self.runs else []

    def iter_packets(self, columns: list[str] | None = None, fixed: dict | None = None, delivered: bool = False,
                     after_warmup: bool = True, id_columns: bool = True) -> Iterator[pd.DataFrame]:
        """The packet records of every run as a stream of frames, one record batch at a time.

        Contract: each frame has ``run_dir``, the factor columns (typed as in `summary`) and, when
        ``columns`` is given, only those plus `PACKET_ID_COLUMNS` (unless ``id_columns`` is False: their
        text, run ids and status, is about half of a batch's conversion to a frame) and the factors
        (memory).  The
        filters run in the scan, so filtered-out rows are never held: ``after_warmup`` keeps packets
        sent at or after ``run.warmup_ns`` (the population of points.csv), ``delivered`` only
        ``status == "delivered"``, ``fixed`` (column -> value, `analysis.conditions.select`; keys
        absent from the records are ignored) only rows with those values — pushed down to the
        partitions (``packets/<factor>=<value>/``) where the value's type matches, re-checked on the
        frame.  Every run yields at least one frame (possibly empty), so the columns are known.
        Peak memory is one record batch per run, not the dataset."""
        import pyarrow.dataset as ds

        for r in self.runs:
            data = _dataset(r.path)
            names = data.schema.names
            want = None
            if columns is not None:
                ids = PACKET_ID_COLUMNS if id_columns else []
                want = [c for c in dict.fromkeys(ids + self.factors + list(columns)) if c in names]
            expr = _scan_filter(data.schema, r.warmup_ns if after_warmup else None, delivered, fixed or {})
            empty = True
            # one file (fragment) at a time, no read-ahead: a dataset-wide scanner buffers batches
            # ahead of a slower consumer without bound (1.8 GiB for 7.2 M packets)
            for frag in data.get_fragments(filter=expr):
                if expr is not None:        # row groups whose statistics rule out every row are never scanned
                    frag = frag.subset(filter=expr, schema=data.schema)
                    if not frag.row_groups:
                        continue
                scan = ds.Scanner.from_fragment(frag, schema=data.schema, columns=want, filter=expr,
                                                batch_size=BATCH_ROWS, use_threads=False, batch_readahead=0,
                                                fragment_readahead=0)
                for batch in scan.to_batches():
                    if batch.num_rows == 0 and not empty:
                        continue
                    empty = False
                    yield self._typed(batch.to_pandas(), r, fixed)
            if empty:
                table = data.schema.empty_table()
                yield self._typed((table.select(want) if want is not None else table).to_pandas(), r, fixed)

    def _typed(self, df: pd.DataFrame, r: RunDir, fixed: dict | None) -> pd.DataFrame:
        for f in self.factors:                  # partition values come back as text, integers or dictionary
            if f in df.columns and f in self.summary.columns:
                df[f] = _summary_typed(df[f], self.summary[f].dtype)
        df = _add_run_factors(df.assign(run_dir=r.name), r, self)
        for k, v in (fixed or {}).items():
            if k in df.columns:
                df = df[df[k] == v]
        return df

    def packets(self, columns: list[str] | None = None, after_warmup: bool = True, fixed: dict | None = None,
                delivered: bool = False) -> pd.DataFrame:
        """The packet records of every run (with ``run_dir`` and the factor columns), in one frame.

        With ``after_warmup`` only packets sent at or after ``run.warmup_ns`` are kept — the
        same population as points.csv.  ``columns`` limits what is read (memory); ``fixed`` and
        ``delivered`` filter in the scan (`iter_packets`).  Holds every selected record: for
        aggregates over many packets use `iter_packets` (`analysis.packetstats`)."""
        frames = list(self.iter_packets(columns, fixed, delivered, after_warmup))
        if not frames:
            raise FileNotFoundError(f"no packets under {self.path}")
        return pd.concat(frames, ignore_index=True)


def _scan_filter(schema, warmup_ns: float | None, delivered: bool, fixed: dict):
    """The pyarrow filter of `Results.iter_packets` (None: keep every row)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    parts = []
    if warmup_ns is not None and warmup_ns > 0:
        parts.append(ds.field("t_sent_ns") >= float(warmup_ns))
    if delivered:
        parts.append(ds.field("status") == "delivered")
    for k, v in fixed.items():
        if k not in schema.names or isinstance(v, bool):
            continue                            # bools and absent keys: checked on the frame only
        t = schema.field(k).type
        if pa.types.is_dictionary(t):
            t = t.value_type
        if (pa.types.is_string(t) or pa.types.is_large_string(t)) and isinstance(v, str):
            parts.append(ds.field(k) == v)
        elif pa.types.is_integer(t) and isinstance(v, numbers.Integral):
            parts.append(ds.field(k) == int(v))
        elif pa.types.is_floating(t) and isinstance(v, numbers.Real):
            parts.append(ds.field(k) == float(v))
    if not parts:
        return None
    expr = parts[0]
    for e in parts[1:]:
        expr = expr & e
    return expr


_DATASETS: dict[Path, tuple[tuple, object]] = {}     # packets dir -> (its files' stat, dataset)


def _dataset(path: Path):
    """The hive-partitioned packet dataset of result directory `path`.  Discovery opens every
    file (``exclude_invalid_files``), so the dataset is kept while the directory's files (name,
    size, mtime) stay the same: the report asks for it dozens of times."""
    import pyarrow.dataset as ds
    root = path / "packets"
    try:
        state = _tree_state(root)
    except OSError:                     # changed while listed: no cache
        state = None
    key = root.resolve()
    hit = _DATASETS.get(key)
    if state is not None and hit is not None and hit[0] == state:
        return hit[1]
    data = ds.dataset(root, format="parquet", partitioning="hive", exclude_invalid_files=True)
    if state is not None:
        if len(_DATASETS) >= 8:
            _DATASETS.pop(next(iter(_DATASETS)))
        _DATASETS[key] = (state, data)
    return data


def _summary_typed(col: pd.Series, dtype) -> pd.Series:
    """A partition column as `dtype` (the summary's): its values read as text, then converted;
    an integer column cast straight to a numeric (not bool) dtype, which gives the same values
    without formatting and parsing every row."""
    num = pd.api.types.is_numeric_dtype
    if pd.api.types.is_bool_dtype(dtype):                    # "False" is a true string
        return col.astype(str).map({"True": True, "False": False, "true": True, "false": False})
    if pd.api.types.is_integer_dtype(col.dtype) and num(dtype):
        return col.astype(dtype)
    return col.astype(str).astype(dtype)


def _tree_state(root: Path) -> tuple:
    """(path, size, mtime_ns) of every file and directory under `root`, sorted (os.walk and
    os.stat: pathlib's rglob took most of a cache hit's time)."""
    out = []
    for dirpath, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            p = os.path.join(dirpath, name)
            st = os.stat(p)
            out.append((p, st.st_size, st.st_mtime_ns))
    return tuple(sorted(out))


def _is_result_dir(p: Path) -> bool:
    return (p / "sweep.json").is_file() and (p / "points.csv").is_file()


def _read_run(p: Path) -> RunDir:
    meta = json.loads((p / "metadata.json").read_text()) if (p / "metadata.json").is_file() else {}
    text = (p / "scenario.resolved.yaml").read_text() if (p / "scenario.resolved.yaml").is_file() else ""
    return RunDir(p, meta, safe_load(text) or {} if text else {}, text)


def _flatten(d, prefix="") -> dict:
    out = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
    elif isinstance(d, list) and all(isinstance(x, dict) for x in d):
        for i, v in enumerate(d):
            out.update(_flatten(v, f"{prefix}{i}."))
    else:
        out[prefix[:-1]] = d if not isinstance(d, list) else tuple(d)
    return out


def varied_keys(runs: list[RunDir]) -> dict[str, dict[str, object]]:
    """Scalar resolved-scenario keys whose values differ between runs: {key: {run: value}}."""
    if len(runs) < 2:
        return {}
    flat = {r.name: _flatten({k: v for k, v in r.resolved.items() if k not in ("compare", "name")}) for r in runs}
    keys = set().union(*[set(f) for f in flat.values()])
    out = {}
    for k in sorted(keys):
        if k.startswith("run.seed") or k.startswith("run.replication"):
            continue
        vals = {n: f.get(k) for n, f in flat.items()}
        if len({repr(v) for v in vals.values()}) > 1:
            out[k] = vals
    return out


def _add_run_factors(df: pd.DataFrame, run: RunDir, res: "Results | None") -> pd.DataFrame:
    extra = getattr(res, "_run_factor_values", {}) if res is not None else {}
    for k, per_run in extra.items():
        if k not in df.columns:
            v = per_run.get(run.name)
            df[k] = v if not isinstance(v, tuple) else str(list(v))
    return df


def load(path: str | Path) -> Results:
    """Load a result directory or a directory of result directories."""
    path = Path(path)
    if _is_result_dir(path):
        runs = [_read_run(path)]
    elif path.is_dir():
        runs = [_read_run(p) for p in sorted(path.iterdir()) if p.is_dir() and _is_result_dir(p)]
        if not runs:
            raise FileNotFoundError(f"{path}: neither a result directory (no sweep.json and points.csv) "
                                    f"nor a directory of them")
    else:
        raise FileNotFoundError(f"{path}: no such directory")
    varied = varied_keys(runs)
    frames: dict[str, list[pd.DataFrame]] = {t: [] for t in TABLES}
    factors: list[str] = []
    for r in runs:
        for f in r.metadata.get("factors", []):
            if f not in factors:
                factors.append(f)
    holder = Results(path, runs, pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), [])
    holder._run_factor_values = {k: v for k, v in varied.items() if k not in factors}
    for r in runs:
        for t in TABLES:
            f = r.path / t
            if f.is_file():
                df = pd.read_csv(f, keep_default_na=True)
                df = df.assign(run_dir=r.name, scenario=r.metadata.get("scenario", ""))
                frames[t].append(_add_run_factors(df, r, holder))
    factors += [k for k in holder._run_factor_values if k not in factors]
    cat = {t: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for t, v in frames.items()}
    points = cat["points.csv"]
    holder.summary = points[points["metric"] != "memory_bytes"].reset_index(drop=True) if len(points) else points
    holder.memory, holder.cores, holder.flows = cat["memory.csv"], cat["cores.csv"], cat["flows.csv"]
    holder.factors = factors
    return holder

"""Read one result directory, or a directory of several runs, into frames.

Contract: `load(path) -> Results`.  ``path`` is either a result directory written by
``netns-sim run`` (it holds ``summary.csv``) or a directory whose immediate subdirectories
are result directories (a sweep, several seeds, ...).  Only the files of the result
directory format are read (README "Result directory"); simulation objects never are.

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
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import yaml

TABLES = ("summary.csv", "memory.csv", "cores.csv", "flows.csv")


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
        """Column names of the packet records (from the first file's schema)."""
        f = next((r.path / "packets.parquet" for r in self.runs if (r.path / "packets.parquet").is_file()), None)
        return pq.read_schema(f).names if f else []

    def packets(self, columns: list[str] | None = None, after_warmup: bool = True) -> pd.DataFrame:
        """packets.parquet of every run (with ``run_dir`` and the factor columns).

        With ``after_warmup`` only packets sent at or after ``run.warmup_ns`` are kept — the
        same population as summary.csv.  ``columns`` limits what is read (memory)."""
        frames = []
        for r in self.runs:
            f = r.path / "packets.parquet"
            if not f.exists():
                continue
            names = pq.read_schema(f).names
            want = None
            if columns is not None:
                base = ["run_id", "replication", "seed", "scheme", "trip", "t_sent_ns", "status"]
                want = [c for c in dict.fromkeys(base + [c for c in self.factors if c in names] + list(columns))
                        if c in names]
            df = pd.read_parquet(f, columns=want)
            if after_warmup:
                df = df[df["t_sent_ns"] >= r.warmup_ns]
            df = df.assign(run_dir=r.name)
            frames.append(_add_run_factors(df, r, self))
        if not frames:
            raise FileNotFoundError(f"no packets.parquet under {self.path}")
        return pd.concat(frames, ignore_index=True)


def _is_result_dir(p: Path) -> bool:
    return (p / "summary.csv").is_file() and not _is_sweep_dir(p)


def _is_sweep_dir(p: Path) -> bool:
    return (p / "sweep.json").is_file() and (p / "points.csv").is_file()


def _read_run(p: Path) -> RunDir:
    meta = json.loads((p / "metadata.json").read_text()) if (p / "metadata.json").is_file() else {}
    text = (p / "scenario.resolved.yaml").read_text() if (p / "scenario.resolved.yaml").is_file() else ""
    return RunDir(p, meta, yaml.safe_load(text) or {} if text else {}, text)


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
    """Load a result directory, a directory of result directories, or a sweep directory."""
    path = Path(path)
    if _is_sweep_dir(path):
        return load_sweep(path)
    if _is_result_dir(path):
        runs = [_read_run(path)]
    elif path.is_dir():
        runs = [_read_run(p) for p in sorted(path.iterdir()) if p.is_dir() and _is_result_dir(p)]
        if not runs:
            raise FileNotFoundError(f"{path}: neither a result directory (no summary.csv) nor a directory of them")
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
                df = df.assign(run_dir=r.name)
                frames[t].append(_add_run_factors(df, r, holder))
    # columns between the id columns and the table's own columns are compare: factors
    for df in frames["summary.csv"]:
        cols = list(df.columns)
        if "scheme" in cols and "replication" in cols:
            for c in cols[cols.index("replication") + 1:cols.index("scheme")]:
                if c not in factors:
                    factors.append(c)
    factors += [k for k in holder._run_factor_values if k not in factors]
    cat = {t: (pd.concat(v, ignore_index=True) if v else pd.DataFrame()) for t, v in frames.items()}
    holder.summary, holder.memory, holder.cores, holder.flows = (cat["summary.csv"], cat["memory.csv"],
                                                                 cat["cores.csv"], cat["flows.csv"])
    holder.factors = factors
    return holder


# -- a `netns-sim sweep` directory ----------------------------------------------------------

class SweepResults(Results):
    """A sweep directory (sim/sweep/store.py layout) seen as one run with replications.

    summary = ``points.csv`` (every run's tidy summary rows; ``run_id`` = ``point_key``);
    factors = the swept keys of ``sweep.json``; memory = the ``memory_bytes`` rows (one
    structure, ``total``, at each host's own namespace count); packets = the hive-partitioned
    ``packets/`` dataset; the resolved scenario = the first point's configuration."""

    def packets(self, columns=None, after_warmup=True):
        import pyarrow.dataset as ds
        data = ds.dataset(self.path / "packets", format="parquet", partitioning="hive")
        names = data.schema.names
        want = None
        if columns is not None:
            base = ["point_key", "replication", "seed", "scheme", "trip", "t_sent_ns", "status"]
            want = [c for c in dict.fromkeys(base + self.factors + list(columns)) if c in names]
        df = data.to_table(columns=want).to_pandas()
        for f in self.factors:                    # partition values come back as text or dictionary
            if f in df.columns and f in self.summary.columns:
                df[f] = df[f].astype(str).astype(self.summary[f].dtype)
        if after_warmup:
            df = df[df["t_sent_ns"] >= self.runs[0].warmup_ns]
        return df.assign(run_dir=self.path.name, run_id=df["point_key"]).reset_index(drop=True)

    def packet_columns(self):
        import pyarrow.dataset as ds
        return ds.dataset(self.path / "packets", format="parquet", partitioning="hive").schema.names


def load_sweep(path: Path) -> Results:
    import ast
    sweep = json.loads((path / "sweep.json").read_text())
    factors = list(sweep.get("factors", []))
    pts = pd.read_csv(path / "points.csv")
    pts = pts.assign(run_dir=path.name, run_id=pts["point_key"], scenario=sweep.get("scenario", ""))
    resolved: dict = {}
    markers = sorted((path / "points").glob("*.json"))
    if markers:
        cfg = json.loads(markers[0].read_text()).get("config")
        try:
            resolved = ast.literal_eval(cfg) if isinstance(cfg, str) else (cfg or {})
        except (ValueError, SyntaxError):
            resolved = {}
    resolved.setdefault("description", sweep.get("description", ""))
    meta = {"scenario": sweep.get("scenario"), "scenario_file": sweep.get("scenario_file"),
            "description": resolved.get("description", ""), "factors": factors,
            "seed": int(pts["seed"].iloc[0]) if len(pts) else None, **{k: v for k, v in sweep.items()
                                                                    if k in ("git", "packages", "sim_version")}}
    run = RunDir(path, meta, resolved, yaml.safe_dump(resolved, sort_keys=False))
    summary = pts[pts["metric"] != "memory_bytes"].reset_index(drop=True)
    mem = pts[pts["metric"] == "memory_bytes"]
    ns_factor = next((f for f in factors if f.rsplit(".", 1)[-1] == "namespaces"), None)
    hosts = {h.get("name"): h for h in resolved.get("hosts", [])}
    memory = pd.DataFrame({
        "run_id": mem["run_id"], "run_dir": path.name, "replication": mem["replication"], "scheme": mem["scheme"],
        **{f: mem[f] for f in factors},
        "namespaces": mem[ns_factor] if ns_factor else [hosts.get(h, {}).get("namespaces", 1) for h in mem["host"]],
        "structure": "total (per host)", "bytes": mem["value"]})
    res = SweepResults(path, [run], summary, memory.reset_index(drop=True), pd.DataFrame(), pd.DataFrame(), factors)
    res._run_factor_values = {}
    return res

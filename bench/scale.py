"""Scale benchmark: wall time and peak memory as packets and namespaces grow (issue: scale).

Each case runs in its own child process through the real command path (`netns-sim run`:
records streamed to Parquet row groups, streaming summaries), and the child reports its
wall time and peak resident memory (``ru_maxrss``, the whole process: Python, numpy,
pandas and pyarrow included).  Cases:

  chain-1M / chain-10M   the 5-hop store-and-forward chain at 70% load (1M vs 10M packets)
  ns-10 / ns-1000 / ns-10000
                         l2-routed wire -> namespace traffic spread over that many
                         namespaces (10 sockets each), same packet count; three
                         interleaved rounds, the median is used
  density                scenarios/density.yaml as shipped
plus the engine events per packet of every scheme and trip (from short runs).

Run: ``.venv/bin/python bench/scale.py`` (about 8 minutes on 2 cores; ``--quick`` divides
the packet counts by 10).  It prints the figures and the issue's ratios.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def chain(packets: int) -> dict:
    nodes = ["a", "s0", "s1", "s2", "s3", "b"]
    return {"name": "chain", "hosts": [{"name": "a"}, {"name": "b"}],
            "switches": [{"name": s} for s in nodes[1:-1]],
            "links": [{"a": x, "b": y, "rate_bps": 1e9, "delay_ns": 1000} for x, y in zip(nodes, nodes[1:])],
            "flows": [{"src": "a:ns0", "dst": "b:ns0", "rate_pps": 0.7 * 1e9 / 8000, "size": {"bytes": 1000}}],
            "run": {"duration_ns": 1e15, "max_packets": packets}}


def many_namespaces(namespaces: int, packets: int) -> dict:
    return {"name": f"ns{namespaces}",
            "hosts": [{"name": "h", "scheme": "l2-routed", "cores": 2, "namespaces": namespaces,
                       "sockets_per_namespace": 10}],
            "flows": [{"src": "h:wire", "dst": "h:ns*", "rate_pps": 500_000, "size": {"bytes": 200}}],
            "run": {"duration_ns": 1e15, "max_packets": packets}}


def child(scenario_file: str) -> None:
    """Run one case in this process and print {wall_s, peak_rss_mb, records} as JSON."""
    from sim.cli import main
    out = tempfile.mkdtemp(prefix="nsim-scale-")
    t0 = time.perf_counter()
    code = main(["run", scenario_file, "--out", str(Path(out) / "r"), "--quiet"])
    wall = time.perf_counter() - t0
    meta = json.loads((Path(out) / "r" / "metadata.json").read_text()) if code == 0 else {}
    records = sum(v.get("records", 0) for v in meta.get("variants", []))
    subprocess.run(["rm", "-rf", out])
    print(json.dumps({"exit": code, "wall_s": wall, "records": records,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def measure(name: str, scenario: dict | Path) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        if isinstance(scenario, Path):
            path = str(scenario)
        else:
            yaml.safe_dump(scenario, f)
            path = f.name
    res = subprocess.run([sys.executable, __file__, "--child", path], capture_output=True, text=True, cwd=ROOT)
    if res.returncode != 0:
        raise SystemExit(f"{name} failed:\n{res.stderr[-3000:]}")
    data = json.loads(res.stdout.strip().splitlines()[-1])
    data["name"] = name
    print(f"  {name:<12} records {data['records']:>11,}  wall {data['wall_s']:8.1f} s  "
          f"{1e6 * data['wall_s'] / max(data['records'], 1):7.2f} us/record  peak RSS {data['peak_rss_mb']:7.0f} MB",
          flush=True)
    return data


def events_per_packet() -> None:
    """Engine events per packet for every scheme and trip, from short unloaded runs."""
    from sim.core.simulate import simulate
    from sim.core.schemes import builtin_registry
    trips = {"wire_to_ns": ("h1:wire", "h1:ns1"), "ns_to_wire": ("h1:ns0", "h1:wire"),
             "ns_to_ns": ("h1:ns0", "h1:ns1"), "ns_to_remote_ns": ("h1:ns0", "h2:ns1"),
             "multicast(4)": ("h1:wire", "group:g")}
    print("\nengine events per packet (1 emission + 1 per pass + 1 per link hop; multicast per sent packet):")
    print(f"  {'scheme':<22}" + "".join(f"{t:>17}" for t in trips))
    for scheme in builtin_registry().names():
        cells = []
        for src, dst in trips.values():
            sc = {"hosts": [{"name": h, "scheme": scheme, "namespaces": 4} for h in ("h1", "h2")],
                  "links": [{"a": "h1", "b": "h2", "rate_bps": 1e10}],
                  "groups": [{"name": "g", "members": ["h1:ns0", "h1:ns1", "h1:ns2", "h1:ns3"]}],
                  "flows": [{"kind": "constant", "src": src, "dst": dst, "rate_pps": 1000}],
                  "run": {"duration_ns": 1e8, "max_packets": 50}}
            r = simulate(sc)
            cells.append(f"{(r.stats['events'] - 1) / r.stats['generated']:>17.2f}")
        print(f"  {scheme:<22}" + "".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="packet counts divided by 10")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        return child(a.child)
    k = 10 if a.quick else 1
    print(f"netns-sim scale benchmark  (python {sys.version.split()[0]}, {'quick' if a.quick else 'full'})")
    r = {}
    r["c1"] = measure("chain-1M" if k == 1 else "chain-100k", chain(1_000_000 // k))
    r["c10"] = measure("chain-10M" if k == 1 else "chain-1M", chain(10_000_000 // k))
    rounds = {n: [] for n in (10, 1000, 10000)}
    for _ in range(3):                   # interleaved repeats; the median is reported
        for n in rounds:
            rounds[n].append(measure(f"ns-{n}", many_namespaces(n, 1_000_000 // k)))
    for n, runs in rounds.items():
        r[n] = sorted(runs, key=lambda d: d["wall_s"])[1]
    r["d"] = measure("density", ROOT / "scenarios" / "density.yaml")
    t_ratio = r["c10"]["wall_s"] / r["c1"]["wall_s"]
    m_ratio = r["c10"]["peak_rss_mb"] / r["c1"]["peak_rss_mb"]
    per = {n: r[n]["wall_s"] / r[n]["records"] for n in (10, 1000, 10000)}
    print("\nratios (targets from the issue):")
    print(f"  10x packets: wall x{t_ratio:.2f} (<= 10.5: {'MET' if t_ratio <= 10.5 else 'NOT MET'}), "
          f"peak memory x{m_ratio:.2f} (<= 1.2: {'MET' if m_ratio <= 1.2 else 'NOT MET'})")
    ns_ratio = per[10000] / per[10]
    print(f"  per-packet wall, 10,000 vs 10 namespaces: x{ns_ratio:.2f} (<= 1.5: {'MET' if ns_ratio <= 1.5 else 'NOT MET'})")
    print(f"  10,000 namespaces x 10 sockets: peak RSS {r[10000]['peak_rss_mb']:.0f} MB for the whole process "
          f"(< 1024: {'MET' if r[10000]['peak_rss_mb'] < 1024 else 'NOT MET'})")
    events_per_packet()


if __name__ == "__main__":
    main()

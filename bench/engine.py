"""Engine benchmark: netns-sim against ns.py, plain simpy and a bare heapq loop on one chain.

Run:  make bench                      (= .venv/bin/python bench/engine.py)
      .venv/bin/python bench/engine.py --quick          (20,000 packets, 3 rounds: a fast check)
      .venv/bin/python bench/engine.py --packets 200000 --rounds 7 [--extras]

The chain (issue 16, the peers' own): 5 store-and-forward hops, Poisson arrivals at 70 % load,
1000-byte packets, 1 ms of service per hop (8 Mb/s links), no propagation delay, 200,000
packets, every packet recorded.  The same chain is run by

  netns-sim  `sim.core.simulate.simulate` on hosts ``a`` and ``b`` joined by 4 switches
             (5 links); it also models a send pass on ``a`` and a receive pass and a read on
             ``b``, so it does more work per packet than the others, and records a columnar
             row per packet;
  ns.py      its ordinary chain, DistPacketGenerator -> Port x 5 -> PacketSink (16 events per
             packet, PacketSink's default recording), `bench/baselines.py`;
  simpy      plain simpy, one process and Store per port, one latency float per packet;
  heapq      a bare heapq event loop (6 events per packet), one latency float per packet.

(1) Simulation: each (simulator, round) runs in a fresh child process, which first runs
    2,000 packets (imports, caches) and then times model construction plus the run with
    ``time.process_time`` (CPU) and ``time.perf_counter`` (wall).  Rounds are interleaved and
    the order of the simulators rotates from round to round; the ratios are computed per
    round (packets per CPU-second of netns-sim / of the other) and their median reported.
(2) Whole process: ``netns-sim run`` of the same chain written as a scenario file (imports,
    validation, the run, Parquet and CSV results into a fresh folder) against a whole ns.py
    process (``python bench/baselines.py --process``: imports, the run, its per-packet records
    written as CSV); and, for reference, the ns.py process writing nothing.  CPU time is the
    child's user + system time (``getrusage(RUSAGE_CHILDREN)``), rounds interleaved.

Targets (issue 16): netns-sim >= 3x ns.py and >= 0.5x the heapq loop in simulation CPU time;
>= 3x ns.py for the whole process.  ``--extras`` adds peak traced memory per packet and the
``l2-routed`` wire -> namespace case (bench/engine_extras.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.baselines import PEER_CHAIN as CHAIN  # noqa: E402  (1 ms of service per hop, no propagation)

SIMULATORS = ("netns-sim", "ns.py", "simpy", "heapq")
TARGETS = {"ns.py": 3.0, "heapq": 0.5}          # simulation CPU: netns-sim / other >= target
PROCESS_TARGET = 3.0                            # whole process: netns-sim run vs ns.py
WARMUP_PACKETS = 2000


# --------------------------------------------------------------------------- header


def cpu_name() -> str:
    """The model name from /proc/cpuinfo (platform.processor() elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def header() -> str:
    return (f"python {platform.python_version()} | simpy {version('simpy')} | ns.py {version('ns.py')} | "
            f"numpy {version('numpy')} | pandas {version('pandas')}\n"
            f"cpu: {cpu_name()} | cpu_count {os.cpu_count()} | {platform.platform()}")


def load_avg() -> str:
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


# --------------------------------------------------------------------------- the netns-sim chain


def chain_config(n_packets: int, hops: int = 5, load: float = 0.7, size_bytes: int = 1000,
                 rate_bps: float = 8e6, delay_s: float = 0.0, seed: int = 1) -> dict:
    """The chain as a scenario (a dict, also written as a file for `netns-sim run`): hosts a
    and b joined through hops-1 switches, one Poisson flow a:ns0 -> b:ns0."""
    nodes = ["a"] + [f"s{i}" for i in range(1, hops)] + ["b"]
    return {
        "name": "bench-chain",
        "hosts": [{"name": "a", "scheme": "host", "namespaces": 1, "cores": 1},
                  {"name": "b", "scheme": "host", "namespaces": 1, "cores": 1}],
        "switches": [{"name": s} for s in nodes[1:-1]],
        "links": [{"a": x, "b": y, "rate_bps": rate_bps, "delay_ns": delay_s * 1e9}
                  for x, y in zip(nodes, nodes[1:])],
        "flows": [{"kind": "poisson", "src": "a:ns0", "dst": "b:ns0",
                   "rate_pps": load * rate_bps / (size_bytes * 8.0), "size": {"bytes": size_bytes}}],
        "run": {"duration_ns": 1e15, "max_packets": n_packets, "seed": seed},
    }


def chain_scenario(n_packets: int, **chain):
    from sim.frontdoor.scenario import Scenario
    return Scenario.model_validate(chain_config(n_packets, **chain))


def run_ours_chain(n_packets: int, **chain) -> dict:
    """netns-sim, simulate() only (validation, model construction and the run)."""
    from sim.core.records import DELIVERED
    from sim.core.simulate import simulate
    t0 = time.perf_counter()
    res = simulate(chain_scenario(n_packets, **chain))
    wall = time.perf_counter() - t0
    rec = res.model.recorder
    ok = rec.column("status") == DELIVERED
    lat_ns = rec.column("t_done_ns")[ok] - rec.column("t_sent_ns")[ok]
    delivered = int(ok.sum())
    return {"delivered": delivered, "wall_s": wall, "events": res.model.engine.events,
            "mean_latency_s": float(lat_ns.mean()) * 1e-9 if delivered else float("nan")}


def runner(name: str):
    from bench import baselines
    return {"netns-sim": run_ours_chain, "ns.py": baselines.run_nspy_chain,
            "simpy": baselines.run_simpy_chain, "heapq": baselines.run_heapq_chain}[name]


def child_sim(name: str, n_packets: int) -> None:
    """In a fresh process: warm up, then time one run of `name`; print JSON."""
    fn = runner(name)
    fn(WARMUP_PACKETS, **CHAIN)
    c0, t0 = time.process_time(), time.perf_counter()
    r = fn(n_packets, **CHAIN)
    r.update(cpu_s=time.process_time() - c0, wall_s=time.perf_counter() - t0)
    print(json.dumps(r))


# --------------------------------------------------------------------------- children


def in_child(argv: list[str], cwd: Path = ROOT) -> tuple[subprocess.CompletedProcess, float, float]:
    """Run argv; (result, wall s, CPU s of the child: user + system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    res = subprocess.run(argv, capture_output=True, text=True, cwd=cwd,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if res.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{res.stderr[-3000:]}")
    return res, wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def sim_round(name: str, n_packets: int) -> dict:
    res, _, _ = in_child([sys.executable, __file__, "--child", name, str(n_packets)])
    return json.loads(res.stdout.strip().splitlines()[-1])


def netns_sim_cmd() -> list[str]:
    exe = ROOT / ".venv" / "bin" / "netns-sim"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "sim"]


def process_round(name: str, n_packets: int, work: Path, k: int) -> dict:
    """One whole process of `name` on the chain; its output goes to a fresh path under `work`."""
    if name == "netns-sim run":
        scenario = work / "chain.yaml"
        out = work / f"run-{k}"
        argv = netns_sim_cmd() + ["run", str(scenario), "--out", str(out), "--quiet"]
    else:
        out = work / f"nspy-{k}.csv"
        argv = [sys.executable, str(ROOT / "bench" / "baselines.py"), "--process", str(n_packets)]
        if name == "ns.py (writes CSV)":
            argv += ["--out", str(out)]
    _, wall, cpu = in_child(argv)
    subprocess.run(["rm", "-rf", str(out)], check=True)
    return {"wall_s": wall, "cpu_s": cpu}


# --------------------------------------------------------------------------- the rounds


def rotate(names, k: int) -> list:
    names = list(names)
    return names[k % len(names):] + names[:k % len(names)]


def run_rounds(n_packets: int, rounds: int) -> tuple[dict, dict]:
    sims: dict[str, list[dict]] = {n: [] for n in SIMULATORS}
    procs_names = ("netns-sim run", "ns.py (writes CSV)", "ns.py (no output)")
    procs: dict[str, list[dict]] = {n: [] for n in procs_names}
    with tempfile.TemporaryDirectory(prefix="nsim-bench-engine-") as d:
        work = Path(d)
        import yaml
        (work / "chain.yaml").write_text(yaml.safe_dump(chain_config(n_packets, **CHAIN), sort_keys=False))
        for k in range(rounds):
            for name in rotate(SIMULATORS, k):
                sims[name].append(sim_round(name, n_packets))
            for name in rotate(procs_names, k):
                procs[name].append(process_round(name, n_packets, work, k))
            r = {n: sims[n][-1]["delivered"] / sims[n][-1]["cpu_s"] for n in SIMULATORS}
            print(f"  round {k + 1}/{rounds} (load {load_avg()}): packets per CPU-s "
                  + ", ".join(f"{n} {v:,.0f}" for n, v in r.items())
                  + " | process CPU s " + ", ".join(f"{n} {procs[n][-1]['cpu_s']:.2f}" for n in procs_names),
                  flush=True)
    return sims, procs


def ratios(ours: list[dict], other: list[dict], key: str) -> list[float]:
    """Per-round speed ratios, netns-sim / other, from time `key` (the same packets each)."""
    return [o[key] / m[key] for m, o in zip(ours, other)]


def verdict(x: float, target: float) -> str:
    return f"target >= {target:g}x: {'met' if x >= target else 'NOT met'}"


def report(n_packets: int, rounds: int, sims: dict, procs: dict) -> None:
    print()
    print(f"(1) simulation: {n_packets:,} packets, {rounds} interleaved rounds, one child process per run")
    head = f"    {'simulator':<11}{'delivered':>10}{'events/pkt':>11}{'mean lat ms':>12}" \
           f"{'CPU s':>8}{'wall s':>8}{'pkts/CPU-s':>12}{'us CPU/event':>13}"
    print(head)
    for n, rs in sims.items():
        cpu = statistics.median(r["cpu_s"] for r in rs)
        wall = statistics.median(r["wall_s"] for r in rs)
        ev = rs[0]["events"] / rs[0]["delivered"]
        print(f"    {n:<11}{rs[0]['delivered']:>10,}{ev:>11.2f}{rs[0]['mean_latency_s'] * 1e3:>12.4f}"
              f"{cpu:>8.2f}{wall:>8.2f}{rs[0]['delivered'] / cpu:>12,.0f}{cpu / rs[0]['events'] * 1e6:>13.2f}")
    print("    (ns.py, simpy and heapq follow the same sample path: equal mean latencies; netns-sim draws its own")
    print("    arrivals and adds its hosts' stack passes)")
    for other in ("ns.py", "simpy", "heapq"):
        cpu_r = ratios(sims["netns-sim"], sims[other], "cpu_s")
        wall_r = ratios(sims["netns-sim"], sims[other], "wall_s")
        med = statistics.median(cpu_r)
        line = (f"    netns-sim / {other:<6} CPU: median {med:.2f}x (rounds {min(cpu_r):.2f}-{max(cpu_r):.2f}); "
                f"wall: median {statistics.median(wall_r):.2f}x")
        if other in TARGETS:
            line += f"   {verdict(med, TARGETS[other])}"
        print(line)
    print()
    print(f"(2) whole process, {rounds} interleaved rounds: child CPU (user + system) and wall")
    for n, rs in procs.items():
        print(f"    {n:<20} CPU {statistics.median(r['cpu_s'] for r in rs):6.2f} s  "
              f"wall {statistics.median(r['wall_s'] for r in rs):6.2f} s")
    for other in ("ns.py (writes CSV)", "ns.py (no output)"):
        cpu_r = ratios(procs["netns-sim run"], procs[other], "cpu_s")
        wall_r = ratios(procs["netns-sim run"], procs[other], "wall_s")
        med = statistics.median(cpu_r)
        line = (f"    netns-sim run / {other:<18} CPU: median {med:.2f}x ({min(cpu_r):.2f}-{max(cpu_r):.2f}); "
                f"wall {statistics.median(wall_r):.2f}x")
        if other == "ns.py (writes CSV)":
            line += f"   {verdict(med, PROCESS_TARGET)}"
        print(line)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--packets", type=int, default=200_000, help="packets per run (default 200,000)")
    ap.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    ap.add_argument("--quick", action="store_true", help="20,000 packets, 3 rounds")
    ap.add_argument("--extras", action="store_true", help="also memory per packet and the l2-routed case")
    ap.add_argument("--child", nargs=2, metavar=("SIMULATOR", "PACKETS"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        return child_sim(a.child[0], int(a.child[1]))
    n, rounds = (20_000, 3) if a.quick else (a.packets, a.rounds)
    t0 = time.perf_counter()
    print("netns-sim engine benchmark (bench/engine.py)")
    print(header())
    print(f"load average at start {load_avg()}")
    sims, procs = run_rounds(n, rounds)
    report(n, rounds, sims, procs)
    if a.extras:
        from bench.engine_extras import extras
        extras(n)
    print(f"\nload average at end {load_avg()}; total benchmark time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()

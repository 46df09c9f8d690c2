"""The measuring driver: runs the measuring program in real setups, interleaved and repeated.

The program is sockperf (`sim.calibrate.sockperf`, ``Config.tool == "sockperf"``) where it
is installed, else netns-sim's Python `pingpong.py` (``"python"``, a fallback: Python's
interpreter is most of its round trip).  `measure_rr` runs one server and one client (pinned
with taskset as `Config` says) and returns the round trip in ns (median and other
percentiles); with ``Config.busy_poll`` both spin on their sockets instead of sleeping
(sockperf only; the regime in which a round trip is the CPU on its path).  `measure_rate`
runs a bounded flood against a sink and returns the packets per second delivered.
`measure_rounds` interleaves all setups round after round (so slow drifts of the machine hit
every setup alike) and `summarise` reports medians over rounds.  Every subprocess has a
timeout; every loop in `pingpong.py` is bounded in count and time.
"""

from __future__ import annotations

import json
import select
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sim.calibrate import sockperf
from sim.calibrate.hostinfo import loadavg
from sim.calibrate.netns import Lab
from sim.calibrate.setups import PORT, Endpoints

PINGPONG = str(Path(__file__).with_name("pingpong.py"))


@dataclass(frozen=True)
class Config:
    rounds: int = 5
    round_trips: int = 2000
    warmup: int = 200
    rate_packets: int = 100_000     # flood: datagrams sent per measurement (bounded)
    rate_max_s: float = 0.5         # flood: time bound per measurement
    client_cpu: int | None = 0      # round trips: both on one CPU had the least noise here
    server_cpu: int | None = 0
    rate_cpus: tuple = (0, 1)       # flood sender, counting sink
    max_s: float = 30.0             # time bound of each program run
    rate: bool = True               # measure packet rates too
    tool: str = "sockperf"          # "sockperf" or "python" (pingpong.py, the fallback)
    sockperf_s: int = 1             # sockperf: seconds per ping-pong run (whole seconds; ~0.55 s are timed)
    rate_s: int = 1                 # sockperf: seconds per throughput run (whole seconds)
    busy_poll: bool = False         # sockperf: both ends spin on non-blocking sockets (no wake-up)

    def to_dict(self) -> dict:
        return asdict(self)


def regime(config: dict) -> str:
    """How a record's round trips were taken (its ``config``), in words for a table's caption."""
    cpus = config.get("client_cpu"), config.get("server_cpu")
    where = "unpinned" if cpus == (None, None) else ("on CPU %s" % cpus[0] if cpus[0] == cpus[1]
                                                     else "on CPUs %s and %s" % cpus)
    how = "both ends busy-polling (no wake-up)" if config.get("busy_poll") else "blocking receives (wake-ups)"
    return f"ping-pong {where}, {how}"


def _wait_ready(p, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if p.poll() is not None:
            raise RuntimeError(f"measuring server exited early: {p.stderr.read().strip()}")
        r, _, _ = select.select([p.stdout], [], [], 0.05)
        if r:
            line = p.stdout.readline().strip()
            if line == "ready":
                return
            raise RuntimeError(f"measuring server said {line!r}")
    raise RuntimeError("measuring server did not start in time")


def _pair(lab: Lab, ep: Endpoints, server_mode: str, client_mode: str, count: int, cfg: Config,
          extra: Sequence[str] = (), max_s: float | None = None, cpus: tuple | None = None) -> tuple[dict, dict]:
    max_s = max_s or cfg.max_s
    client_cpu, server_cpu = cpus or (cfg.client_cpu, cfg.server_cpu)
    py = sys.executable
    common = ["--size", str(ep.size), "--max-s", str(max_s)]
    server = lab.popen(ep.server_ns, [py, PINGPONG, server_mode, ep.server_addr, str(PORT), "--count",
                                      str(10 * count + 100), "--idle", "0.5", *common], cpu=server_cpu)
    try:
        _wait_ready(server, 10.0)
        cp = lab.run(ep.client_ns, [py, PINGPONG, client_mode, ep.server_addr, str(PORT), "--count", str(count),
                                    "--idle", "0.5", *extra, *common], cpu=client_cpu, timeout=max_s + 15)
        client = json.loads(cp.stdout.strip().splitlines()[-1])
        out, err = server.communicate(timeout=max_s + 5)
        srv = json.loads(out.strip().splitlines()[-1]) if out.strip() else {}
        return client, srv
    finally:
        lab.reap(server)


def measure_rr(lab: Lab, ep: Endpoints, cfg: Config, count: int | None = None) -> dict:
    if cfg.tool == "sockperf":
        return sockperf.pingpong(lab, ep, cfg.sockperf_s, (cfg.client_cpu, cfg.server_cpu), spin=cfg.busy_poll)
    client, _ = _pair(lab, ep, "serve", "rr", count or cfg.round_trips, cfg, ["--warmup", str(cfg.warmup)])
    if not client.get("round_trips"):
        raise RuntimeError(f"no round trip completed between {ep.client_ns} and {ep.server_ns}:{ep.server_addr}")
    return client


def measure_rate(lab: Lab, ep: Endpoints, cfg: Config) -> dict:
    if cfg.tool == "sockperf":
        r = sockperf.throughput(lab, ep, cfg.rate_s, cfg.rate_cpus)
        return {k: r[k] for k in ("sent", "send_pps", "received", "pps", "path_pps", "rcvbuf_drops")}
    client, srv = _pair(lab, ep, "sink", "flood", cfg.rate_packets, cfg, max_s=cfg.rate_max_s,
                        cpus=cfg.rate_cpus)
    return {"sent": client["sent"], "send_pps": client["send_pps"], "received": srv.get("messages", 0),
            "pps": srv.get("pps", 0.0)}


def measure_rounds(lab: Lab, endpoints: dict[str, Endpoints], cfg: Config, log=print,
                   rounds: int | None = None) -> list[dict]:
    """Raw rows: one per (round, setup): name, round, rr stats, and rate stats."""
    rows = []
    for rnd in range(rounds or cfg.rounds):
        names = list(endpoints)
        if rnd % 2:
            names.reverse()          # alternate the order, so no setup always runs first
        for name in names:
            ep = endpoints[name]
            rr = measure_rr(lab, ep, cfg)
            row = {"setup": name, "round": rnd, "loadavg": loadavg(),
                   **{f"rr_{k}": v for k, v in rr.items() if k != "mode"}}
            if cfg.rate:
                row.update({f"rate_{k}": v for k, v in measure_rate(lab, ep, cfg).items()})
            rows.append(row)
            log(f"  round {rnd + 1}: {name:14s} rr median {row['rr_median_ns'] / 1000:8.2f} us"
                + (f"   rate {row['rate_pps'] / 1000:8.1f} kpps" if cfg.rate else ""))
    return rows


def summarise(rows: list[dict]) -> dict[str, dict]:
    """Per setup: median over rounds of the per-round medians (and of the rates)."""
    out: dict[str, dict] = {}
    for name in dict.fromkeys(r["setup"] for r in rows):
        mine = [r for r in rows if r["setup"] == name]
        meds = [r["rr_median_ns"] for r in mine]
        s = {"rr_median_ns": statistics.median(meds), "rr_round_medians_ns": meds,
             "rr_spread_ns": (max(meds) - min(meds)) if meds else 0.0, "rounds": len(mine)}
        pps = [r["rate_pps"] for r in mine if "rate_pps" in r]
        if pps:
            s["pps"] = statistics.median(pps)
            s["pps_rounds"] = pps
            s["pps_spread"] = max(pps) - min(pps)
        path = [r["rate_path_pps"] for r in mine if "rate_path_pps" in r]
        if path:
            s["path_pps"] = statistics.median(path)
            s["path_pps_rounds"] = path
        out[name] = s
    return out


def meminfo_kb() -> dict[str, int]:
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemAvailable", "MemFree", "Slab", "Percpu"):
            out[key] = int(rest.split()[0])
    return out


def measure_idle(lab: Lab, ep: Endpoints, counts: tuple[int, ...], cfg: Config, log=print) -> tuple[list[dict], dict]:
    """With 1, 100, 1000... idle namespaces present (added cumulatively to `lab`), measure the
    one-crossing round trip; also the memory per namespace (/proc/meminfo before and after the
    largest step) and the time to create and delete them (``ip -batch``).  Returns (raw rows
    named ``veth-idleN``, namespace-cost dict)."""
    rows: list[dict] = []
    made: list[str] = []
    steps: list[dict] = []
    for n in sorted(counts):
        before = meminfo_kb()
        names, dt = lab.add_idle([f"i{i:04d}" for i in range(len(made), n)])
        after = meminfo_kb()
        made += names
        steps.append({"to": n, "added": len(names), "create_s": dt, "before_kb": before, "after_kb": after})
        for rnd in range(cfg.rounds):
            r = measure_rr(lab, ep, cfg)
            rows.append({"setup": f"veth-idle{n}", "round": rnd, **{f"rr_{k}": v for k, v in r.items() if k != "mode"}})
        med = statistics.median(x["rr_median_ns"] for x in rows if x["setup"] == f"veth-idle{n}")
        log(f"  {n:5d} idle namespaces: rr median {med / 1000:8.2f} us")
    before = meminfo_kb()
    del_s = lab.del_idle(made)
    time.sleep(0.5)
    biggest = max(steps, key=lambda s: s["added"])
    k = max(biggest["added"], 1)
    grown_from, grown_to = biggest["before_kb"], biggest["after_kb"]
    ns_cost = {
        "namespaces_measured": biggest["added"],
        "bytes_per_namespace_memavailable": (grown_from["MemAvailable"] - grown_to["MemAvailable"]) * 1024 / k,
        "bytes_per_namespace_slab_percpu": ((grown_to["Slab"] - grown_from["Slab"])
                                            + (grown_to.get("Percpu", 0) - grown_from.get("Percpu", 0))) * 1024 / k,
        "create_us_per_namespace": biggest["create_s"] * 1e6 / k,
        "delete_us_per_namespace": del_s * 1e6 / max(len(made), 1),
        "steps": steps, "delete_s": del_s, "after_delete_kb": meminfo_kb(), "before_delete_kb": before,
    }
    return rows, ns_cost

"""The cross-core wake-up term, measured: round trips with both programs on one CPU and on two.

A UDP ping-pong between two processes makes two wake-ups per round trip: the server's (the
request's softirq queues it on the server socket: sock_def_readable -> try_to_wake_up) and
the client's (the same for the response).  With both programs pinned to one CPU these are
same-core wake-ups (ttwu_queue on the local runqueue; the wakee runs when the waker blocks);
pinned to two CPUs they are cross-core ones (ttwu_queue_wakelist -> an IPI, and the wakee's
CPU leaves idle: kernel/sched/core.c).  The packet path itself does the same work either way
(loopback and veth hand the packet to the *sending* CPU's backlog, netif_rx), so in the
model's terms (`sim.core.apps`: a cross-core wake-up delays the reader by ``wakeup_ipi_ns``,
a same-core one by ``wakeup_local_ns``; neither delay is CPU on the path)

    RTT(two CPUs) - RTT(one CPU) = 2 x (wakeup_ipi_ns - wakeup_local_ns).

`derive` fits that difference on the ``fit`` setup (loopback: no other path work to blur it)
and checks it on the others (held out): their measured two-CPU round trip against their
one-CPU round trip plus the fitted difference.  ``wakeup_local_ns`` itself is not separable
from the applications' own cost in a round trip and keeps its prior; the fitted value is
``wakeup_ipi_ns = wakeup_local_ns + difference / 2``.

The measurement interleaves setups and pinnings round after round (order reversed every
other round); a value is the median over rounds of sockperf's per-run median.  It is a
timing measurement: run it on a quiet machine; the load average is recorded per run.

`measure_paced` repeats the fit setup's two pinnings with the client pacing its round trips
(``sockperf --mps``), so that each woken CPU has been idle for about 1 / rate before the
wake-up: whether a cross-core wake-up's delay depends on how long its CPU idled (a halted
vCPU, a deeper C-state) shows as (two CPUs - one CPU) / 2 changing with the rate.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from sim.calibrate import sockperf
from sim.calibrate.hostinfo import loadavg
from sim.calibrate.netns import Lab
from sim.calibrate.setups import Endpoints

PINS = {"one_cpu": (0, 0), "two_cpus": (0, 1)}
FIT_SETUP = "loopback"


def measure(lab: Lab, endpoints: dict[str, Endpoints], rounds: int, seconds: float,
            log: Callable[[str], None] = print) -> list[dict]:
    """Raw rows, one per (round, setup, pinning): the sockperf ping-pong figures and the load."""
    rows = []
    runs = [(name, pin) for name in endpoints for pin in PINS]
    for rnd in range(rounds):
        for name, pin in (runs[::-1] if rnd % 2 else runs):
            rr = sockperf.pingpong(lab, endpoints[name], seconds, PINS[pin])
            rows.append({"round": rnd, "setup": name, "pin": pin, "loadavg": loadavg(), **rr})
            log(f"  round {rnd + 1}: {name:10s} {pin:9s} rtt median {rr['median_ns'] / 1000:8.2f} us")
    return rows


def summarise(rows: list[dict]) -> dict[str, dict[str, dict]]:
    """{setup: {pin: {median_ns (over rounds), round_medians_ns, spread_ns}}}."""
    out: dict[str, dict[str, dict]] = {}
    for r in rows:
        out.setdefault(r["setup"], {}).setdefault(r["pin"], {"round_medians_ns": []})["round_medians_ns"].append(
            r["median_ns"])
    for pins in out.values():
        for s in pins.values():
            meds = s["round_medians_ns"]
            s["median_ns"] = statistics.median(meds)
            s["spread_ns"] = max(meds) - min(meds)
    return out


def derive(summary: dict[str, dict[str, dict]], wakeup_local_ns: float, fit: str = FIT_SETUP) -> dict:
    """The fitted cross-core wake-up and the held-out check (see the module docstring).
    ``range_ns`` spans the per-round differences of the fit setup (paired by round)."""
    if fit not in summary or set(PINS) - set(summary[fit]):
        raise ValueError(f"the fit setup {fit!r} was not measured with both pinnings")
    one, two = summary[fit]["one_cpu"], summary[fit]["two_cpus"]
    diff = two["median_ns"] - one["median_ns"]
    paired = [b - a for a, b in zip(one["round_medians_ns"], two["round_medians_ns"])]
    ipi = wakeup_local_ns + diff / 2
    checks = []
    for name, pins in summary.items():
        if name == fit or set(PINS) - set(pins):
            continue
        predicted = pins["one_cpu"]["median_ns"] + diff
        measured = pins["two_cpus"]["median_ns"]
        checks.append({"setup": name, "one_cpu_ns": pins["one_cpu"]["median_ns"], "two_cpus_ns": measured,
                       "predicted_two_cpus_ns": predicted, "error_pct": 100 * (predicted - measured) / measured,
                       "spread_ns": pins["two_cpus"]["spread_ns"]})
    return {"fit": fit, "difference_ns": diff, "wakeup_local_ns": wakeup_local_ns, "wakeup_ipi_ns": ipi,
            "range_ns": [wakeup_local_ns + min(paired) / 2, wakeup_local_ns + max(paired) / 2],
            "held_out": checks}


def _cell(s: dict | None) -> str:
    return f"{s['median_ns'] / 1000:.2f} [{s['spread_ns'] / 1000:.2f}]" if s else "-"


def format_table(summary: dict[str, dict[str, dict]], result: dict) -> str:
    """Round trips per setup and pinning, the fit and the held-out check, as Markdown."""
    lines = ["| setup | role | RTT one CPU (us) [spread] | RTT two CPUs (us) [spread] | two CPUs predicted (us) "
             "| error |", "|---|---|---:|---:|---:|---:|"]
    checks = {c["setup"]: c for c in result["held_out"]}
    for name, pins in summary.items():
        one, two = pins.get("one_cpu"), pins.get("two_cpus")
        c = checks.get(name)
        lines.append(f"| {name} | {'fit' if name == result['fit'] else 'held-out'} | {_cell(one)} | {_cell(two)} | "
                     + (f"{c['predicted_two_cpus_ns'] / 1000:.2f} | {c['error_pct']:+.1f}% |" if c else "- | - |"))
    lo, hi = result["range_ns"]
    lines.append("")
    lines.append(f"two CPUs - one CPU on {result['fit']}: {result['difference_ns'] / 1000:.2f} us per round trip "
                 f"(two wake-ups) -> wakeup_ipi_ns = wakeup_local_ns ({result['wakeup_local_ns']:.0f}, prior) + "
                 f"{result['difference_ns'] / 2:.0f} = {result['wakeup_ipi_ns']:.0f} ns "
                 f"(per-round range {lo:.0f}-{hi:.0f})")
    return "\n".join(lines)


def measure_paced(lab: Lab, ep: Endpoints, rates: list[int], rounds: int, seconds: float,
                  log: Callable[[str], None] = print) -> list[dict]:
    """Raw rows, one per (round, rate, pinning) of `ep` with the client pacing its round trips
    at `rate` per second (0: back to back), interleaved and reversed every other round."""
    rows = []
    runs = [(rate, pin) for rate in rates for pin in PINS]
    for rnd in range(rounds):
        for rate, pin in (runs[::-1] if rnd % 2 else runs):
            rr = sockperf.pingpong(lab, ep, seconds, PINS[pin], mps=rate or None)
            rows.append({"round": rnd, "rate": rate, "pin": pin, "loadavg": loadavg(), **rr})
            pace = str(rate or "back to back")
            log(f"  round {rnd + 1}: {pace:>12} {pin:9s} rtt median {rr['median_ns'] / 1000:8.2f} us")
    return rows


def paced_table(rows: list[dict]) -> str:
    """Markdown: per pace, the median over rounds of the round trip on one CPU and on two, and
    half their same-round difference (the cross-core wake-up's delay less the same-core one's,
    per wake), median [range over rounds].  A woken CPU idles about max(period, two-CPU round
    trip) less its own work before each wake-up: a period shorter than the round trip cannot
    be kept, and the client then runs back to back."""
    lines = ["| round trips per s | period (us) | RTT one CPU (us) | RTT two CPUs (us) | "
             "(two - one) / 2 per wake (us) [rounds] |", "|---:|---:|---:|---:|---:|"]
    for rate in dict.fromkeys(r["rate"] for r in rows):
        by = {pin: {r["round"]: r["median_ns"] for r in rows if r["rate"] == rate and r["pin"] == pin} for pin in PINS}
        one, two = by["one_cpu"], by["two_cpus"]
        half = sorted((two[k] - one[k]) / 2 for k in one if k in two)
        if not half:
            continue
        rtt = statistics.median(two.values())
        idle = (f"{1e6 / rate:.0f}" + (" (< RTT: back to back)" if 1e9 / rate < rtt else "")) if rate else "-"
        lines.append(f"| {rate or 'back to back'} | {idle} | {statistics.median(one.values()) / 1000:.2f} | "
                     f"{statistics.median(two.values()) / 1000:.2f} | {statistics.median(half) / 1000:.2f} "
                     f"[{half[0] / 1000:.2f}..{half[-1] / 1000:.2f}] |")
    return "\n".join(lines)

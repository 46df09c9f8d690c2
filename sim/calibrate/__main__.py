"""Entry points: ``calibrate`` and ``validate-real`` (``python -m sim.calibrate CMD ...``).

`calibrate_main(argv)` and `validate_main(argv)` return an exit status; `main(argv)` takes the
command as its first argument.  Without root or iproute2 they print why and return 2
(no traceback).  Ctrl-C or SIGTERM: everything created is removed, exit 130/143.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import signal
import sys
from pathlib import Path

import yaml

from sim.calibrate import fit as fitmod
from sim.calibrate import memory as memmod
from sim.calibrate import perfprofile, perfstages, profile_io, sockperf, tcpreorder, tcprr, tcpstages, validate, wakeup
from sim.calibrate.hostinfo import host_info, loadavg
from sim.calibrate.measure import Config, measure_idle, measure_rounds, regime, summarise
from sim.calibrate.netns import Lab, Unavailable, check_environment, cleanup_leftovers
from sim.calibrate.setups import IDLE_COUNTS, SETUPS, availability, by_name
from sim.core.costs import CostProfile, load_profile


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def _sigterm(_signo, _frame):
    raise SystemExit(143)


def _measure_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--round-trips", type=int, default=2000, help="round trips per setup and round (default 2000)")
    p.add_argument("--setups", default="", help="comma-separated subset of setups (default: all)")
    p.add_argument("--idle-counts", default=",".join(map(str, IDLE_COUNTS)),
                   help="idle namespace counts for the one-crossing setup ('' to skip)")
    p.add_argument("--no-rate", action="store_true", help="skip the packet-rate floods")
    p.add_argument("--tool", choices=["auto", "sockperf", "python"], default="auto",
                   help="measuring program: sockperf (auto: when installed) or the Python ping-pong (fallback)")
    p.add_argument("--pin", choices=["same", "split", "none"], default=None,
                   help="round-trip client/server CPUs: both on CPU 0 (default; least noise), 0 and 1 (the default "
                        "and the only choice with --busy-poll), or unpinned")
    p.add_argument("--busy-poll", action="store_true",
                   help="round trips with both sockperf ends spinning on non-blocking sockets, on CPUs 0 and 1: "
                        "no sleep and no wake-up, so a round trip is the CPU on its path (needs sockperf and "
                        "two CPUs)")
    p.add_argument("--cleanup", action="store_true",
                   help="only remove leftovers (nsim-*) of runs whose process is gone "
                        "(live runs are left alone), then exit")


def _two_cpus_to_spin(option: str) -> None:
    """A busy-polling ping-pong spins one end on each of CPUs 0 and 1: refuse `option` on one CPU."""
    if (os.cpu_count() or 1) < 2:
        raise SystemExit(f"{option} needs two CPUs (one spinning end each); this machine has one")


def _config(a) -> Config:
    two = (os.cpu_count() or 1) > 1
    a.pin = a.pin or ("split" if a.busy_poll else "same")
    if a.busy_poll:
        _two_cpus_to_spin("--busy-poll")
        if a.pin != "split":
            raise SystemExit(f"--busy-poll --pin {a.pin}: two spinning ends must not share a CPU (each would spin "
                             "out its time slice); leave --pin out or use --pin split")
        if a.tool == "python":
            raise SystemExit("--busy-poll needs sockperf (--tool sockperf or auto), not the Python ping-pong")
    cpus = {"same": (0, 0), "split": (0, 1 if two else 0), "none": (None, None)}[a.pin]
    if a.rounds < 1 or not 10 <= a.round_trips <= 100_000:
        raise SystemExit("--rounds must be >= 1 and --round-trips in 10..100000")
    tool = _tool("sockperf" if a.busy_poll else a.tool)
    return Config(rounds=a.rounds, round_trips=a.round_trips, client_cpu=cpus[0], server_cpu=cpus[1],
                  rate=not a.no_rate, rate_cpus=(0, 1 if two else 0), tool=tool, busy_poll=a.busy_poll)


def _tool(wanted: str, log=_log) -> str:
    """sockperf when asked or available; else the Python ping-pong, said loudly."""
    if wanted == "python":
        return "python"
    if sockperf.available():
        return "sockperf"
    if wanted == "sockperf":
        raise Unavailable(sockperf.INSTALL_HINT)
    log(f"{sockperf.INSTALL_HINT}; FALLING BACK to the Python ping-pong (pingpong.py), whose interpreter is most "
        "of each round trip: kernel increments will be less precise")
    return "python"


def program_label(tool: str) -> str:
    return ("sockperf " + sockperf.version() if tool == "sockperf"
            else "python pingpong.py (FALLBACK: sockperf not used)")


def _build(lab: Lab, wanted: list, skipped: dict, log) -> dict:
    """Build the wanted setups this machine can build; the others go to `skipped` with why."""
    log(f"run {lab.run_id}: namespaces nsim-{lab.run_id}-*, addresses in 10.251.0.0/16")
    missing = availability(lab)
    endpoints = {}
    for s in wanted:
        lacking = [missing[n] for n in s.needs if n in missing]
        if lacking:
            skipped[s.name] = "; ".join(lacking)
            log(f"skip {s.name}: {skipped[s.name]}")
            continue
        endpoints[s.name] = s.build(lab)
    return endpoints


def run_perf_stages(a, log=_log) -> dict:
    """Per-stage CPU ns per packet of every setup (perf sampling during a sockperf flood),
    setups interleaved round after round; medians over rounds."""
    if not sockperf.available():
        raise Unavailable(sockperf.INSTALL_HINT + " (perf-stages floods with sockperf)")
    if shutil.which("perf") is None:
        raise Unavailable("perf is not installed (Debian: apt-get install linux-perf)")
    wanted = [s for s in SETUPS if not a.setups or s.name in a.setups.split(",")]
    two = (os.cpu_count() or 1) > 1
    skipped: dict = {}
    runs: dict[str, list] = {}
    with Lab() as lab:
        endpoints = _build(lab, wanted, skipped, log)
        if getattr(a, "tcp", False):
            endpoints = {n: dataclasses.replace(ep, tcp=True) for n, ep in endpoints.items()}
        for rnd in range(a.rounds):
            names = list(endpoints)[::-1 if rnd % 2 else 1]
            for name in names:
                if a.regime in ("pingpong", "busy-poll"):
                    spin = a.regime == "busy-poll"
                    r = perfstages.record_pingpong(lab, endpoints[name], a.perf_s, a.freq,
                                                   cpus=(0, 1) if spin else (0, 0), spin=spin)
                    how = (f"RTT {r['rtt_median_ns'] / 1000:6.2f} us (CPU per round trip "
                           f"{r['rtt_from_window_ns'] / 1000:6.2f})")
                else:
                    r = perfstages.record(lab, endpoints[name], a.perf_s, a.freq, (0, 1 if two else 0),
                                          mps=a.mps or None)
                    how = f"lost before UDP {r['lost_before_udp']} of {r['flood_sent']}"
                runs.setdefault(name, []).append(r)
                log(f"  round {rnd + 1}: {name:16s} {r['pps_in_window'] / 1000:7.1f} kpps, "
                    f"{sum(r['ns_per_packet'].values()):6.0f} ns/packet charged, {how}; load {r['loadavg']}")
    return {"host": host_info(), "skipped": skipped, "regime": a.regime, "tcp": bool(getattr(a, "tcp", False)),
            "perf_s": a.perf_s, "freq_hz": a.freq, "mps": a.mps,
            "setups": {n: perfstages.merge(rs) for n, rs in runs.items()}, "raw": runs}


REPEAT_HELP = ("price a stage's repeat traversals (the second and later time one packet runs it) apart from "
               "its first, where some fitting setups run it again and some once (repeat_ns; docs/calibration.md)")


def _print_perf_fit(rec: dict, prior, repeat: bool = False) -> None:
    """Per-traversal stage costs from the fitting setups, and the held-out setups predicted
    (a TCP record: its TCP stages per segment, tcp_ack apart; no fit)."""
    if rec.get("tcp"):
        print("\nTCP per segment (median of rounds)\n" + perfstages.tcp_table(rec))
        return
    estimates = perfprofile.all_estimates(rec, prior, repeat)
    print("\nStage costs per traversal (fitting setups, then stages by difference; held out: "
          + ", ".join(n for n in rec["setups"] if by_name(n).fit_never) + ")")
    print(perfprofile.estimates_table(estimates, prior))
    measured_profile = CostProfile.model_validate(perfprofile.with_estimates(prior, estimates, "this run"))
    print("\nModel-stage CPU per packet: measured vs the per-traversal values above")
    print(perfprofile.format_check(perfprofile.check_table(perfprofile.record_measured(rec), measured_profile)))


def _perf_sampling_args(p: argparse.ArgumentParser, out: str) -> None:
    """The options perf-stages and tcp-stages share: record file, rounds, perf's window and rate."""
    p.add_argument("--out", default=out, help=f"JSON record to write (default {out})")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    p.add_argument("--perf-s", type=float, default=1.5, help="seconds sampled per flood and round")
    p.add_argument("--freq", type=int, default=2999, help="perf sampling frequency, Hz per CPU")


def perf_stages_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.calibrate perf-stages",
                                description="Per-stage CPU cost per packet from perf sampling during a flood "
                                            "or a ping-pong.")
    _perf_sampling_args(p, "perf-stages.json")
    p.add_argument("--mps", type=int, default=0,
                   help="flood rate, datagrams/s (default 0: back to back; sockperf paces --mps by spinning)")
    p.add_argument("--regime", choices=["flood", "pingpong", "busy-poll"], default="flood",
                   help="flood: sockperf throughput, sender CPU 0, sink CPU 1 (the rate regime); pingpong: "
                        "sockperf ping-pong with both ends on CPU 0, as calibrate measures round trips (the "
                        "latency regime, sampled by default at 499 Hz for 4 s: at 2999 Hz perf's stack "
                        "unwinding slows the ping-pong by 5-12%%); busy-poll: the ping-pong with both ends "
                        "spinning on non-blocking sockets on CPUs 0 and 1, as calibrate --busy-poll (needs two "
                        "CPUs); ns per packet is then per message one way")
    p.add_argument("--setups", default="", help="comma-separated subset of setups (default: all)")
    p.add_argument("--tcp", action="store_true",
                   help="the same over TCP (sockperf --tcp): per segment, with the CPU inside tcp_ack apart "
                        "(in a ping-pong every segment carries the ACK of the message before); no stage fit")
    p.add_argument("--cleanup", action="store_true", help="as for calibrate")
    p.add_argument("--from", dest="from_record", default=None,
                   help="analyse this perf-stages record again instead of measuring")
    p.add_argument("--repeat-prices", action="store_true", help=REPEAT_HELP)
    p.set_defaults(freq=None, perf_s=None)
    a = p.parse_args(argv)
    pingpong = a.regime != "flood"
    if a.regime == "busy-poll":
        _two_cpus_to_spin("--regime busy-poll")
    a.freq = a.freq or (499 if pingpong else 2999)
    a.perf_s = a.perf_s or (4.0 if pingpong else 1.5)

    def body() -> int:
        if a.from_record:
            rec = json.loads(Path(a.from_record).read_text())
            print(f"regime: {rec.get('regime', 'flood')}; CPU ns per packet (median over rounds)")
            print(perfstages.by_setup_table(rec["setups"], list(rec["setups"])))
            _print_perf_fit(rec, load_profile("default"), a.repeat_prices)
            return 0
        check_environment()
        rec = run_perf_stages(a)
        Path(a.out).write_text(json.dumps(rec, indent=1, default=str))
        info = rec["host"]
        print(f"{info['cpu_model']} x{info['cpus']}, kernel {info['kernel']}, load {info['loadavg']}; "
              f"CPU ns per packet (median of {a.rounds} rounds)")
        print(perfstages.by_setup_table(rec["setups"], list(rec["setups"])))
        _print_perf_fit(rec, load_profile("default"), a.repeat_prices)
        print(f"wrote {a.out}")
        return 0

    return _guarded("perf-stages", a, body)


def tcp_stages_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.calibrate tcp-stages",
                                description="TCP's per-stage CPU per segment (perf during TCP floods over a veth "
                                            "pair, offloads off and on) and TCP vs UDP ping-pong.")
    _perf_sampling_args(p, "tcp-stages.json")
    p.add_argument("--pp-seconds", type=float, default=2.0, help="sockperf ping-pong seconds per run")
    p.add_argument("--pp-cpus", default="0,1", help="client,server CPUs of the ping-pongs (default 0,1; 0,0: one CPU)")
    p.add_argument("--floods", default=",".join(tcpstages.DEFAULT_FLOODS),
                   help=f"comma-separated floods, of {','.join(tcpstages.FLOODS)} (empty: none)")
    p.add_argument("--no-pingpongs", action="store_true", help="the floods only")
    p.add_argument("--mps", type=int, default=0,
                   help="flood rate, messages/s (default 0: back to back)")
    p.add_argument("--cleanup", action="store_true", help="as for calibrate")
    p.add_argument("--from", dest="from_record", default=None, help="print the tables of this record again")
    a = p.parse_args(argv)

    def body() -> int:
        if a.from_record:
            print(tcpstages.table(json.loads(Path(a.from_record).read_text())))
            return 0
        check_environment()
        pp_cpus = tuple(int(c) for c in a.pp_cpus.split(","))
        if len(pp_cpus) != 2:
            raise ValueError(f"--pp-cpus {a.pp_cpus!r}: give two CPUs, client,server (e.g. 0,0)")
        rec = tcpstages.run(a.rounds, a.perf_s, a.freq, a.pp_seconds, _log, mps=a.mps or None,
                            floods=tuple(f for f in a.floods.split(",") if f), pingpongs=not a.no_pingpongs,
                            pp_cpus=(pp_cpus[0], pp_cpus[1]))
        Path(a.out).write_text(json.dumps(rec, indent=1, default=str))
        info = rec["host"]
        print(f"{info['cpu_model']} x{info['cpus']}, kernel {info['kernel']}, load {info['loadavg']}; "
              f"CPU ns per segment (UDP: per datagram), median of {a.rounds} rounds")
        print(tcpstages.table(rec))
        print(f"wrote {a.out}")
        return 0

    return _guarded("tcp-stages", a, body, bad_input=(ValueError,))


def tcp_rr_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.calibrate tcp-rr",
                                description="TCP_RR (sockperf ping-pong --tcp) across calibration setups, "
                                            "interleaved rounds; ratios to the first setup (sim/calibrate/tcprr.py).")
    p.add_argument("--setups", default="routed-fw100,macvlan",
                   help="comma-separated setups of sim/calibrate/setups.py; the first is the baseline")
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--seconds", type=float, default=2.0, help="sockperf seconds per setup and round")
    p.add_argument("--size", type=int, default=1024, help="message bytes (netperf TCP_RR -r)")
    p.add_argument("--cpus", default="0,0", help="client,server CPUs (default 0,0: one CPU)")
    p.add_argument("--out", default="tcp-rr.json")
    p.add_argument("--cleanup", action="store_true", help="as for calibrate")
    a = p.parse_args(argv)

    def body() -> int:
        cpus = tuple(int(c) for c in a.cpus.split(","))
        if len(cpus) != 2 or a.rounds < 1 or a.size < 1:
            raise ValueError("--cpus takes two CPUs (client,server); --rounds and --size must be positive")
        for name in a.setups.split(","):
            by_name(name)             # an unknown setup fails before anything is built
        check_environment()
        rec = tcprr.run([s for s in a.setups.split(",") if s], a.rounds, a.seconds, a.size, (cpus[0], cpus[1]), _log)
        rec["host"] = host_info()
        Path(a.out).write_text(json.dumps(rec, indent=1, default=str))
        for name, s in rec["setups"].items():
            print(f"{name}: median round trip {s['median_of_rounds_ns'] / 1e3:.2f} us, "
                  f"ratio to the first {rec['ratio_to_first'][name]:.3f}")
        print(f"load average per round: {'; '.join(rec['loadavg'])}; wrote {a.out}")
        return 0

    return _guarded("tcp-rr", a, body, bad_input=(ValueError, KeyError))


def run_measurements(a, log=_log) -> dict:
    """Build every available setup, measure (interleaved rounds, then the idle-namespace
    phase), tear everything down; returns the calibration record without the fit."""
    cfg = _config(a)
    wanted = [s for s in SETUPS if not a.setups or s.name in a.setups.split(",")]
    idle_counts = tuple(int(x) for x in a.idle_counts.split(",") if x.strip())
    skipped: dict[str, str] = {}
    with Lab(getattr(a, "run_id", None)) as lab:
        endpoints = _build(lab, wanted, skipped, log)
        log(f"measuring {len(endpoints)} setups with {program_label(cfg.tool)}, {cfg.rounds} rounds"
            + ("" if cfg.tool == "sockperf" else f" x {cfg.round_trips} round trips") + f"; load {loadavg()}")
        rows = measure_rounds(lab, endpoints, cfg, log)
        ns_cost: dict = {}
        if idle_counts and "veth" in endpoints:
            rows_idle, ns_cost = measure_idle(lab, endpoints["veth"], idle_counts, cfg, log)
            rows += rows_idle
        mem = _measure_memory(lab, a, log)
    out = {"host": host_info(), "config": {**cfg.to_dict(), "pin": a.pin},
           "measuring_program": program_label(cfg.tool), "run_id": lab.run_id,
           "skipped": skipped, "raw": rows, "summary": summarise(rows), "namespace_costs": ns_cost}
    if mem:
        out["memory"] = mem
    return out


def _counts(text: str) -> tuple[int, ...]:
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ValueError(f"expected comma-separated counts, e.g. 100,1000, not {text!r}") from None
    if any(c < 1 or c > 4000 for c in counts):
        raise ValueError(f"counts must be in 1..4000, not {text!r}")
    return counts


def _measure_memory(lab: Lab, a, log=_log) -> dict:
    """The memory phase (`sim.calibrate.memory`) when the command asks for it, else {}."""
    ns, veth = _counts(getattr(a, "memory_namespaces", "")), _counts(getattr(a, "memory_veth", ""))
    if not ns and not veth:
        return {}
    log(f"memory: up to {max(ns, default=0)} namespaces, then up to {max(veth, default=0)} veth pairs "
        f"(Slab + Percpu from /proc/meminfo, caches from /proc/slabinfo)")
    return memmod.measure(lab, ns, veth, log=log)


def run_memory_only(a, log=_log) -> dict:
    """Only the memory phase (no timing setups): a record with ``memory``."""
    check_environment()
    with Lab(getattr(a, "run_id", None)) as lab:
        log(f"run {lab.run_id}: namespaces nsim-{lab.run_id}-*, addresses in 10.251.0.0/16")
        mem = _measure_memory(lab, a, log)
    if not mem:
        raise ValueError("--memory-only with no counts (--memory-namespaces and --memory-veth are both empty)")
    return {"host": mem["host"], "run_id": lab.run_id, "memory": mem}


def _guarded(command: str, a, body, bad_input: tuple = ()) -> int:
    """Run a command's `body` with the shared exit codes: 2 unavailable or bad input, 130
    interrupted, 1 failed; everything the run created is removed by `Lab` either way.
    ``--cleanup`` runs instead of the body."""
    old = signal.signal(signal.SIGTERM, _sigterm)
    try:
        if a.cleanup:
            return _cleanup()
        return body()
    except (Unavailable, *bad_input) as e:
        _log(f"netns-sim {command}: {e}")
        return 2
    except KeyboardInterrupt:
        _log("interrupted: everything this run created was removed")
        return 130
    except RuntimeError as e:
        _log(f"failed: {e}\n(everything this run created was removed)")
        return 1
    finally:
        signal.signal(signal.SIGTERM, old)


def calibrate_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="netns-sim calibrate",
                                description="Measure real namespace setups and fit a cost profile to them.")
    p.add_argument("--out", default="calibrated.yaml", help="profile to write (default calibrated.yaml)")
    p.add_argument("--name", default="calibrated", help="name of the written profile")
    p.add_argument("--prior", default="default", help="profile whose values are the priors (default: default)")
    p.add_argument("--train", default=",".join(s.name for s in SETUPS if s.train),
                   help="setups the fit uses; the others are predicted (held out)")
    p.add_argument("--perf", default=None,
                   help="a perf-stages record: stage costs are taken from it (\"measured (perf)\") and only the "
                        "application's cost per message is fitted to the round trips")
    p.add_argument("--repeat-prices", action="store_true", help="with --perf: " + REPEAT_HELP)
    p.add_argument("--measurements", default=None,
                   help="take the round trips and rates from this earlier calibration record (a calibrated "
                        "profile or its .calibration.json) instead of measuring now")
    _measure_args(p)
    p.add_argument("--memory-namespaces", default=",".join(map(str, memmod.NS_COUNTS)),
                   help="memory: create namespaces (loopback up) up to these counts, cumulatively, and measure "
                        "kernel memory per namespace ('' to skip)")
    p.add_argument("--memory-veth", default=",".join(map(str, memmod.VETH_COUNTS)),
                   help="memory: then veth pairs (both ends up, an IPv4 address each) up to these counts ('' to skip)")
    p.add_argument("--memory-only", action="store_true",
                   help="measure only memory (no timing setups); the profile is --prior with memory_bytes' measured "
                        "terms set")
    a = p.parse_args(argv)
    if a.repeat_prices and not a.perf:
        p.error("--repeat-prices prices stage costs from a perf-stages record: give --perf RECORD too")

    def memory_only() -> int:
        prior = load_profile(a.prior)
        if a.measurements:
            mem = profile_io.read_record(a.measurements).get("memory")
            if not mem:
                raise ValueError(f"{a.measurements}: no memory measurement in it")
        else:
            mem = run_memory_only(a)["memory"]
        # a calibrated prior keeps its own record (round trips, fit); the memory record joins it
        record = {**(prior.calibration or {"host": mem["host"], "prior": prior.name}), "memory": mem}
        data = prior.model_dump(exclude={"source_file", "calibration"})
        data["name"] = a.name
        info = mem["host"]
        data["memory_bytes"], notes = memmod.derive(mem, data["memory_bytes"])
        said = (f"memory_bytes' measured terms set by netns-sim calibrate --memory-only on {info['cpu_model']} "
                f"({mem['possible_cpus']} possible CPUs), kernel {info['kernel']}, {info['date']}")
        data["description"] = (f"{prior.description.strip()} Then {said} (record: its \"memory\")."
                               if prior.calibration else
                               f"The '{prior.name}' profile with {said}. Calibration record: "
                               f"{profile_io.sidecar(a.out).name}.")
        mem["derived"] = {"memory_bytes": dict(data["memory_bytes"]), "notes": notes, "prior": prior.name}
        side = profile_io.write(a.out, data, record)
        print("\n".join(memmod.summary_lines(mem, data["memory_bytes"])))
        for k, v in notes.items():
            print(f"  {k}: {v}")
        print(f"wrote {a.out} and {side}")
        return 0

    def body() -> int:
        _counts(a.memory_namespaces), _counts(a.memory_veth)        # bad counts: exit 2 before measuring
        if a.memory_only:
            return memory_only()
        prior = load_profile(a.prior)
        if a.measurements:
            record = {k: v for k, v in profile_io.read_record(a.measurements).items()
                      if k not in ("fit", "validation", "prior", "perf")}
        else:
            check_environment()
            record = run_measurements(a)
        summary = record["summary"]
        train = [by_name(n) for n in a.train.split(",") if n in summary and not by_name(n).fit_never]
        if not train:
            raise SystemExit("none of the training setups was measured")
        info = record["host"]
        where = f"{info['cpu_model']} ({info['cpus']} CPUs), kernel {info['kernel']}, {info['date']}"
        if a.perf:
            perf = json.loads(Path(a.perf).read_text())
            estimates = perfprofile.all_estimates(perf, prior, a.repeat_prices)
            pinfo = perf["host"]
            data = perfprofile.with_estimates(prior, estimates, f"{pinfo['cpu_model']}, kernel {pinfo['kernel']}")
            result = fitmod.fit_app(train, {n: s["rr_median_ns"] for n, s in summary.items()},
                                    CostProfile.model_validate(data))
            data["name"] = a.name
            data["description"] = (f"Calibrated by netns-sim calibrate on {where}: stage costs measured with perf "
                                   f"({a.perf}); application cost per message fitted to {result.train}. "
                                   f"Calibration record: {profile_io.sidecar(a.out).name}.")
            record["perf"] = {"file": a.perf, "host": pinfo, "repeat_prices": a.repeat_prices,
                              "estimates": {k: vars(e) for k, e in estimates.items()}}
        else:
            result = fitmod.fit(train, {n: s["rr_median_ns"] for n, s in summary.items()}, prior)
            data = fitmod.apply(prior, result, a.name,
                                f"Calibrated by netns-sim calibrate on {where}: stage groups of the '{prior.name}' "
                                f"profile scaled to fit {result.train}. "
                                f"Calibration record: {profile_io.sidecar(a.out).name}.")
        if record.get("memory"):
            data["memory_bytes"], notes = memmod.derive(record["memory"], data["memory_bytes"])
            record["memory"]["derived"] = {"memory_bytes": dict(data["memory_bytes"]), "notes": notes}
        record["fit"] = result.to_dict()
        record["prior"] = prior.name
        rows = validate.table(summary, CostProfile.model_validate(data), result.app_ns, result.train)
        record["validation"] = rows
        side = profile_io.write(a.out, data, record)
        print(validate.format_table(rows))
        print(validate.held_out_summary(rows))
        print(f"\napp (measuring program) {result.app_ns:.0f} ns/message; scales " +
              ", ".join(f"{k}={v:.3g}" for k, v in result.scales.items()))
        for k, v in result.notes.items():
            print(f"  {k}: {v}")
        print(f"wrote {a.out} and {side}")
        return 0

    return _guarded("calibrate", a, body, bad_input=(FileNotFoundError, ValueError))


def validate_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="netns-sim validate-real",
                                description="Predict the real setups with a profile and compare with measurements.")
    p.add_argument("--profile", default=None,
                   help="cost profile (a calibrated one carries its measurements; default: the default profile, "
                        "measured now)")
    p.add_argument("--measure", action="store_true", help="measure now even if the profile carries measurements")
    _measure_args(p)
    a = p.parse_args(argv)

    def body() -> int:
        profile = load_profile(a.profile or "default")
        record = profile_io.read_calibration(profile.source_file) if a.profile and profile.source_file else {}
        if a.measure or not record.get("summary"):
            check_environment()
            record = {**record, **run_measurements(a)}
        summary = record["summary"]
        fit = record.get("fit") or {}
        if "app_ns" in fit:
            app, train = fit["app_ns"], fit.get("train", [])
        else:
            app, train = validate.fit_app_only(summary, profile), ["loopback"]
        rows = validate.table(summary, profile, app, train)
        info = record.get("host", {})
        print(f"profile {profile.name} ({profile.source_file}); measured on kernel {info.get('kernel')}, "
              f"{info.get('cpu_model')}; app {app:.0f} ns/message")
        print(validate.format_table(rows))
        print(validate.held_out_summary(rows))
        print(f"\nworst |error| held out: round trip {validate.worst_error(rows, 'held-out'):.1f}%, "
              f"kernel-only increment {validate.worst_error(rows, 'held-out', 'extra_error_pct'):.0f}%, "
              f"rate ratio {validate.worst_error(rows, 'held-out', 'rate_error_pct'):.0f}% "
              f"(training: {validate.worst_error(rows, 'train'):.1f}%); measured with "
              f"{record.get('measuring_program', 'python pingpong.py')} ({regime(record.get('config', {}))}), "
              f"load {info.get('loadavg')}")
        if record.get("skipped"):
            for k, v in record["skipped"].items():
                print(f"not measured: {k} ({v})")
        return 0

    return _guarded("validate-real", a, body, bad_input=(FileNotFoundError, ValueError))


def wakeup_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.calibrate wakeup",
                                description="Measure the cross-core wake-up: round trips on one CPU and on two.")
    p.add_argument("--out", default="wakeup.json", help="JSON record to write (default wakeup.json)")
    p.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    p.add_argument("--seconds", type=float, default=1.0, help="sockperf seconds per run (whole seconds)")
    p.add_argument("--setups", default="loopback,veth,routed",
                   help="setups (default loopback,veth,routed; loopback is the fit, the others held out)")
    p.add_argument("--profile", default=None,
                   help="also write the fitted wakeup_ipi_ns into this profile file (its calibration record "
                        "keeps the measurement)")
    p.add_argument("--paced", default="",
                   help="also measure the fit setup with the client pacing its round trips at these rates per "
                        "second (e.g. 20000,5000,1000; 0: back to back): does a wake-up's delay depend on how "
                        "long the woken CPU idled?")
    p.add_argument("--from", dest="from_record", default=None, help="analyse this wakeup record again")
    p.add_argument("--cleanup", action="store_true", help="as for calibrate")
    a = p.parse_args(argv)

    def body() -> int:
        if a.rounds < 1:
            raise ValueError("--rounds must be >= 1")
        try:
            rates = [int(x) for x in a.paced.split(",") if x.strip()]
        except ValueError:
            rates = [-1]
        if any(r < 0 for r in rates):
            raise ValueError(f"--paced {a.paced!r}: give round trips per second as whole numbers >= 0, e.g. 20000,1000")
        if a.from_record:
            rec = json.loads(Path(a.from_record).read_text())
            if not isinstance(rec, dict) or not {"host", "rounds", "summary"} <= set(rec):
                raise ValueError(f"{a.from_record}: not a wakeup record (it needs host, rounds and summary); "
                                 "write one with `python -m sim.calibrate wakeup --out FILE`")
        else:
            check_environment()
            if not sockperf.available():
                raise Unavailable(sockperf.INSTALL_HINT)
            if (os.cpu_count() or 1) < 2:
                raise Unavailable("a cross-core wake-up needs two CPUs; this machine has one")
            wanted = [by_name(n) for n in a.setups.split(",") if n]
            skipped: dict = {}
            with Lab() as lab:
                endpoints = _build(lab, wanted, skipped, _log)
                rows = wakeup.measure(lab, endpoints, a.rounds, a.seconds, _log)
                paced = (wakeup.measure_paced(lab, endpoints[wakeup.FIT_SETUP], rates, a.rounds, a.seconds, _log)
                         if rates and wakeup.FIT_SETUP in endpoints else [])
            rec = {"host": host_info(), "measuring_program": program_label("sockperf"), "rounds": a.rounds,
                   "skipped": skipped, "raw": rows, "summary": wakeup.summarise(rows)}
            if paced:
                rec["paced"] = paced
        prior = load_profile(a.profile or "default")
        rec["result"] = wakeup.derive(rec["summary"], prior.host.wakeup_local_ns)
        if not a.from_record:
            tmp = Path(a.out + ".tmp")
            tmp.write_text(json.dumps(rec, indent=1, default=str))
            tmp.replace(a.out)
        info = rec["host"]
        print(f"{info['cpu_model']} x{info['cpus']}, kernel {info['kernel']}, load {info['loadavg']}; "
              f"median of {rec['rounds']} rounds")
        print(wakeup.format_table(rec["summary"], rec["result"]))
        if rec.get("paced"):
            print("\nPaced round trips on " + wakeup.FIT_SETUP + "\n" + wakeup.paced_table(rec["paced"]))
        if a.profile:
            _write_wakeup(a.profile, rec)
            print(f"wrote wakeup_ipi_ns into {a.profile}")
        if not a.from_record:
            print(f"wrote {a.out}")
        return 0

    return _guarded("wakeup", a, body, bad_input=(FileNotFoundError, ValueError))


def _write_wakeup(path: str, rec: dict) -> None:
    """Set ``host.wakeup_ipi_ns`` of the profile file `path` to the fitted value, with its source,
    and keep the wake-up record in the profile's calibration record."""
    data = yaml.safe_load(Path(path).read_text())
    res, info = rec["result"], rec["host"]
    data.setdefault("host", {})["wakeup_ipi_ns"] = round(res["wakeup_ipi_ns"], 1)
    data["host"].setdefault("sources", {})["wakeup_ipi_ns"] = (
        f"measured (sockperf ping-pong over {res['fit']}, two CPUs vs one, median of {rec['rounds']} rounds; "
        f"{info['cpu_model']}, kernel {info['kernel']}, {info['date']}; per-round range "
        f"{res['range_ns'][0]:.0f}-{res['range_ns'][1]:.0f} ns); wakeup_local_ns kept as the prior")
    record = profile_io.read_calibration(path)
    record["wakeup"] = {k: rec[k] for k in ("host", "measuring_program", "rounds", "summary", "result")}
    profile_io.write(path, data, record)


def _cleanup() -> int:
    try:
        check_environment()
    except Unavailable as e:
        _log(f"netns-sim: {e}")
        return 2
    done = cleanup_leftovers()
    print(f"removed {len(done['namespaces'])} namespace(s), {len(done['root_links'])} root link(s) and "
          f"{len(done['bpf_mounts'])} bpf filesystem(s)"
          + (f"; left {len(done['live'])} live run(s) alone ({', '.join(done['live'])})" if done["live"] else "")
          + (f"; could not remove {done['failed']}" if done["failed"] else ""))
    return 1 if done["failed"] else 0


def tcp_reorder_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.calibrate tcp-reorder",
                                description="Whether a TCP stream's segments arrive out of order over a "
                                            "routed veth path, one segment per skb, sender and sink on two "
                                            "CPUs or one (sim/calibrate/tcpreorder.py).")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0, help="sockperf seconds per placement and round")
    p.add_argument("--placements", default="1,0;0,0", help="sender,sink CPU pairs separated by ';'")
    p.add_argument("--offloads", action="store_true", help="TSO, GSO and GRO on (default off: one segment per skb)")
    p.add_argument("--out", default="tcp-reorder.json")
    p.add_argument("--cleanup", action="store_true", help="as for calibrate")
    a = p.parse_args(argv)

    def body() -> int:
        try:
            pairs = [tuple(int(c) for c in pair.split(",")) for pair in a.placements.split(";") if pair]
        except ValueError:
            pairs = []
        if not pairs or any(len(x) != 2 or min(x) < 0 for x in pairs) or a.rounds < 1 or a.seconds <= 0:
            raise ValueError("--placements takes sender,sink CPU pairs (e.g. '1,0;0,0'); "
                             "--rounds and --seconds must be positive")
        check_environment()
        rec = tcpreorder.run(a.rounds, a.seconds, [(x[0], x[1]) for x in pairs], _log, offloads=a.offloads)
        rec["host"] = host_info()
        Path(a.out).write_text(json.dumps(rec, indent=1, default=str))
        print("\n".join(tcpreorder.table(rec)))
        print(f"wrote {a.out}")
        return 0

    return _guarded("tcp-reorder", a, body, bad_input=(ValueError,))


def repeatability_main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sim.calibrate repeatability",
                                description="Across calibration records of one machine (runs at different "
                                            "times): whether any prediction could meet the held-out increment "
                                            "target in every run (validate.repeatability). Reads records only.")
    p.add_argument("records", nargs="+", help="calibration records (*.calibration.json)")
    p.add_argument("--tolerance", type=float, default=20.0, help="percent (default 20: issue 12's target)")
    a = p.parse_args(argv)
    try:
        if not 0 < a.tolerance < 100:
            raise ValueError(f"--tolerance {a.tolerance}: give a percent between 0 and 100")
        recs = {Path(r).name: profile_io.read_record(r) for r in a.records}
    except (OSError, ValueError) as e:
        _log(f"netns-sim repeatability: {e}")
        return 2
    rows = validate.repeatability(recs, a.tolerance)
    if not rows:
        _log("netns-sim repeatability: the records have no held-out validation rows (run calibrate first)")
        return 2
    print(validate.format_repeatability(rows, a.tolerance))
    return 0


COMMANDS = {"calibrate": calibrate_main, "validate-real": validate_main, "perf-stages": perf_stages_main,
            "tcp-stages": tcp_stages_main, "tcp-rr": tcp_rr_main, "tcp-reorder": tcp_reorder_main,
            "wakeup": wakeup_main, "repeatability": repeatability_main}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(f"usage: python -m sim.calibrate {{{','.join(COMMANDS)}}} [options]", file=sys.stderr)
        return 2
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main())

"""Reference baselines for the netns-sim benchmark (bench/engine.py).

The SAME open store-and-forward chain of ``hops`` ports is built three ways:

  (1) ``run_nspy_chain``  -- with ns.py's own classes, its ordinary chain:
        DistPacketGenerator -> Port -> Port -> ... -> Port -> PacketSink
      (one Port = FIFO output queue + serialization at ``rate_bps``): 1 + 3 per hop
      events per packet (16 for 5 hops).  Only when ``delay_s > 0`` (every simulator then
      gets the same propagation) is a Wire put after each Port.  PacketSink keeps its
      default recording (rec_waits=True, rec_arrivals=True): every packet is recorded.

  (2) ``run_simpy_chain`` -- idiomatic plain simpy: one process per port pulling
      from a ``simpy.Store``, a serialization ``timeout``, then the next port's Store
      (through a propagation ``timeout`` only when ``delay_s > 0``).  The sink records one
      latency float per packet.

  (3) ``run_heapq_chain`` -- a bare event loop: a ``heapq`` of (time, sequence, callback,
      argument), one event per arrival and one per departure from a port (1 + hops events
      per packet), FIFO ``deque`` per port; the sink records one latency float per packet.
      No simulation library: the floor a Python engine can approach.

Workload: Poisson arrivals of fixed-size packets, arrival rate
``load * rate_bps / (size_bytes * 8)``; all ports unbounded.  Time unit: seconds.

All three consume the same seeded ``random.Random`` stream in the same order
(wait an exponential gap, then inject), so they follow the *same sample path*:
their mean latencies agree to floating-point rounding, a built-in cross-check.

ns.py quirk handled here: ``DistPacketGenerator`` stamps ``packet.time`` when it
*creates* a packet and only injects it after the following inter-arrival gap, so
``PacketSink.waits`` over-states latency by one inter-arrival time. The true
injection time of packet k is the creation time of packet k+1 (the generator
creates the next packet at the instant it injects the previous one), and the last
packet's injection is the instant the generator process ends.  We derive the
correct latency from the sink's own ``packet_times``/``waits`` records, so no
extra per-packet recording is added on the ns.py side.

Event counts: simpy hands every scheduled event a sequence number from
``env._eid``; each run drains the event queue completely, so
``next(env._eid)`` == number of events processed, at zero runtime cost.  If that
private attribute is missing we fall back to an Environment subclass that counts
in ``step()``.
"""

from __future__ import annotations

import heapq
import random
import time
import tracemalloc
from collections import deque

import simpy

__all__ = [
    "PEER_CHAIN",
    "run_nspy_chain",
    "run_simpy_chain",
    "run_heapq_chain",
    "peak_memory_per_packet",
    "md1_sojourn_s",
    "chain_theory_latency_s",
]

# The peers' 5-hop chain (issue 16): 70 % load, 1000 B packets at 8 Mb/s = 1 ms of service
# per hop, no propagation delay.
PEER_CHAIN = dict(hops=5, load=0.7, size_bytes=1000, rate_bps=8e6, delay_s=0.0, seed=1)


# --------------------------------------------------------------------------- helpers


class _CountingEnvironment(simpy.Environment):
    """Fallback event counter (only used if simpy lacks ``_eid``)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.n_steps = 0

    def step(self):
        super().step()  # raises EmptySchedule when drained: not counted
        self.n_steps += 1


def _make_env():
    env = simpy.Environment()
    if hasattr(env, "_eid"):
        return env
    return _CountingEnvironment()


def _events_processed(env):
    if isinstance(env, _CountingEnvironment):
        return env.n_steps
    if len(env._queue) != 0:  # not drained -> scheduled != processed
        return None
    return next(env._eid)


def _arrival_rate(load, size_bytes, rate_bps):
    if not (0 < load < 1):
        raise ValueError("load must be in (0, 1) for an open chain")
    return load * rate_bps / (size_bytes * 8.0)


def md1_sojourn_s(load=0.7, size_bytes=1000, rate_bps=1e9):
    """M/D/1 mean sojourn (wait + service) of one hop: S + rho*S / (2(1-rho))."""
    s = size_bytes * 8.0 / rate_bps
    return s + load * s / (2.0 * (1.0 - load))


def chain_theory_latency_s(hops=5, load=0.7, size_bytes=1000, rate_bps=1e9, delay_s=1e-6):
    """Exact mean end-to-end latency of the chain.

    Hop 1 is M/D/1. Every later hop has the same deterministic service time and
    the same constant propagation delay, so packets leaving hop 1 are already
    spaced >= S apart and never wait again: hops 2..n contribute S + d each.
    """
    s = size_bytes * 8.0 / rate_bps
    return md1_sojourn_s(load, size_bytes, rate_bps) + delay_s + (hops - 1) * (s + delay_s)


# --------------------------------------------------------------------------- ns.py


def run_nspy_chain(n_packets: int, hops: int = 5, load: float = 0.7, size_bytes: int = 1000,
                   rate_bps: float = 1e9, delay_s: float = 1e-6, seed: int = 1, keep_sink: bool = False) -> dict:
    """ns.py: DistPacketGenerator -> Port x hops -> PacketSink (a Wire after each Port only
    when ``delay_s > 0``)."""
    from ns.packet.dist_generator import DistPacketGenerator
    from ns.packet.sink import PacketSink
    from ns.port.port import Port
    from ns.port.wire import Wire

    lam = _arrival_rate(load, size_bytes, rate_bps)
    rng = random.Random(seed)
    expo = rng.expovariate

    t0 = time.perf_counter()
    env = _make_env()
    gen = DistPacketGenerator(
        env, "src",
        arrival_dist=lambda: expo(lam),
        size_dist=lambda: size_bytes,
        size=n_packets * size_bytes,  # generator stops after exactly n_packets
        flow_id=0,
    )
    sink = PacketSink(env)  # default recording: rec_waits=True, rec_arrivals=True
    upstream = gen
    for _ in range(hops):
        port = Port(env, rate_bps)  # qlimit=None -> unbounded FIFO
        upstream.out = port
        upstream = port
        if delay_s > 0:
            wire = Wire(env, lambda: delay_s)
            port.out = wire
            upstream = wire
    upstream.out = sink

    gen_end = {}
    gen.action.callbacks.append(lambda ev: gen_end.__setitem__("t", env.now))

    env.run()  # all processes idle on Store.get once the sink has every packet
    wall = time.perf_counter() - t0

    delivered = sink.packets_received[0]
    created = sink.packet_times[0]  # packet.time == creation time (see module doc)
    waits = sink.waits[0]  # now - packet.time at the sink
    lat_sum = 0.0
    if delivered:
        # latency_k = waits_k - (inject_k - created_k); inject_k = created_{k+1}
        lat_sum = sum(waits) - (created[-1] - created[0]) - (gen_end["t"] - created[-1])
    return {
        "delivered": delivered,
        "wall_s": wall,
        "events": _events_processed(env),
        "mean_latency_s": lat_sum / delivered if delivered else float("nan"),
        # ns.py's raw PacketSink figure (includes one extra inter-arrival gap):
        "nspy_raw_mean_wait_s": sum(waits) / delivered if delivered else float("nan"),
        **({"sink": sink} if keep_sink else {}),
    }


def nspy_process(n_packets: int, out: str | None) -> None:
    """A whole ns.py process on `PEER_CHAIN` (bench/engine.py's process comparison): the run,
    then, with `out`, the sink's per-packet records (created, arrived, wait) written as CSV."""
    import csv
    r = run_nspy_chain(n_packets, **PEER_CHAIN, keep_sink=True)
    if out:
        sink = r["sink"]
        created, waits = sink.packet_times[0], sink.waits[0]
        with open(out, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["packet", "created_s", "arrived_s", "wait_s"])
            w.writerows((i, c, c + wt, wt) for i, (c, wt) in enumerate(zip(created, waits)))
    print(r["delivered"])


# --------------------------------------------------------------------------- plain simpy


def run_simpy_chain(n_packets: int, hops: int = 5, load: float = 0.7, size_bytes: int = 1000,
                    rate_bps: float = 1e9, delay_s: float = 1e-6, seed: int = 1) -> dict:
    """Plain simpy: source process -> hops x (Store + port process) -> sink."""
    lam = _arrival_rate(load, size_bytes, rate_bps)
    rng = random.Random(seed)
    expo = rng.expovariate

    t0 = time.perf_counter()
    env = _make_env()
    latencies = []  # the sink's recording: one float per packet

    def sink_put(pkt):  # pkt = (packet_id, t_inject, size_bytes)
        latencies.append(env.now - pkt[1])

    stores = [simpy.Store(env) for _ in range(hops)]  # unbounded FIFO queues
    next_put = [s.put for s in stores[1:]] + [sink_put]

    def port(inbox, forward):
        timeout = env.timeout
        get = inbox.get
        while True:
            pkt = yield get()
            yield timeout(pkt[2] * 8.0 / rate_bps)  # serialization
            if delay_s > 0:  # propagation: the link carries the packet while the port serves the next
                timeout(delay_s, pkt).callbacks.append(lambda ev: forward(ev.value))
            else:
                forward(pkt)

    def source():
        first = stores[0]
        for i in range(n_packets):
            yield env.timeout(expo(lam))  # same draw order as ns.py's generator
            first.put((i, env.now, size_bytes))

    for inbox, forward in zip(stores, next_put):
        env.process(port(inbox, forward))
    env.process(source())

    env.run()  # drains: ports idle on Store.get once everything is delivered
    wall = time.perf_counter() - t0

    delivered = len(latencies)
    return {
        "delivered": delivered,
        "wall_s": wall,
        "events": _events_processed(env),
        "mean_latency_s": sum(latencies) / delivered if delivered else float("nan"),
    }


# --------------------------------------------------------------------------- bare heapq loop


def run_heapq_chain(n_packets: int, hops: int = 5, load: float = 0.7, size_bytes: int = 1000,
                    rate_bps: float = 1e9, delay_s: float = 1e-6, seed: int = 1) -> dict:
    """A bare event loop: heapq of (time, seq, callback, arg); FIFO deque and busy flag per port."""
    lam = _arrival_rate(load, size_bytes, rate_bps)
    rng = random.Random(seed)
    expo = rng.expovariate
    service = size_bytes * 8.0 / rate_bps

    t0 = time.perf_counter()
    heap: list = []
    push, pop = heapq.heappush, heapq.heappop
    seq = 0
    now = 0.0
    latencies: list = []  # the sink's recording: one float per packet
    queues = [deque() for _ in range(hops)]
    busy = [False] * hops

    def schedule(delay, fn, arg):
        nonlocal seq
        seq += 1
        push(heap, (now + delay, seq, fn, arg))

    def arrive(hop_pkt):  # a packet reaches port `hop` (or the sink when hop == hops)
        hop, pkt = hop_pkt
        if hop == hops:
            latencies.append(now - pkt[1])
        elif busy[hop]:
            queues[hop].append(pkt)
        else:
            busy[hop] = True
            schedule(service, depart, (hop, pkt))

    def depart(hop_pkt):  # port `hop` has serialized pkt
        hop, pkt = hop_pkt
        if delay_s > 0:
            schedule(delay_s, arrive, (hop + 1, pkt))
        else:
            arrive((hop + 1, pkt))
        q = queues[hop]
        if q:
            schedule(service, depart, (hop, q.popleft()))
        else:
            busy[hop] = False

    sent = 0

    def emit(_):  # inject one packet, then wait for the next gap (same draw order as ns.py)
        nonlocal sent
        arrive((0, (sent, now, size_bytes)))
        sent += 1
        if sent < n_packets:
            schedule(expo(lam), emit, None)

    schedule(expo(lam), emit, None)
    events = 0
    while heap:
        now, _, fn, arg = pop(heap)
        fn(arg)
        events += 1
    wall = time.perf_counter() - t0

    delivered = len(latencies)
    return {
        "delivered": delivered,
        "wall_s": wall,
        "events": events,
        "mean_latency_s": sum(latencies) / delivered if delivered else float("nan"),
    }


# --------------------------------------------------------------------------- memory


def peak_memory_per_packet(fn, n_packets: int, **kw) -> float:
    """Run fn under tracemalloc and return peak traced bytes / delivered packets."""
    was_tracing = tracemalloc.is_tracing()
    if was_tracing:
        tracemalloc.stop()  # restart so only this run's allocations count
    tracemalloc.start()
    try:
        res = fn(n_packets, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        if was_tracing:
            tracemalloc.start()
    return peak / max(res["delivered"], 1)


# --------------------------------------------------------------------------- main


def _verify_event_count(fn, n=500):
    """Cross-check the _eid event count against an explicit step() counter."""
    import unittest.mock as um

    fast = fn(n)["events"]
    env_box = []

    def make():
        e = _CountingEnvironment()
        env_box.append(e)
        return e

    with um.patch(f"{__name__}._make_env", make):
        fn(n)
    return fast, env_box[0].n_steps


def _self_check() -> None:
    N = 20_000
    cfg = dict(PEER_CHAIN)
    theory_md1 = md1_sojourn_s(cfg["load"], cfg["size_bytes"], cfg["rate_bps"])
    theory_chain = chain_theory_latency_s(**{k: cfg[k] for k in
                                             ("hops", "load", "size_bytes", "rate_bps", "delay_s")})
    print(f"chain: {cfg['hops']} hops, load {cfg['load']}, {cfg['size_bytes']} B, "
          f"{cfg['rate_bps']:.0e} b/s, delay {cfg['delay_s']*1e6:g} us, N={N}")
    print(f"theory: M/D/1 single-hop sojourn = {theory_md1*1e6:.3f} us; "
          f"chain (hop1 M/D/1 + 4 wait-free hops + 5 links) = {theory_chain*1e6:.3f} us")

    results = {}
    for name, fn in (("ns.py", run_nspy_chain), ("simpy", run_simpy_chain), ("heapq", run_heapq_chain)):
        fn(2000, **cfg)  # warm-up (imports, caches)
        r = fn(N, **cfg)
        bpp = peak_memory_per_packet(fn, N, **cfg)
        results[name] = r
        ev = r["events"]
        print(f"{name:6s} delivered={r['delivered']}  wall={r['wall_s']:.3f}s  "
              f"{r['delivered']/r['wall_s']:,.0f} delivered/s  "
              f"events/pkt={ev / r['delivered'] if ev is not None else float('nan'):.2f}  "
              f"mean latency={r['mean_latency_s']*1e6:.3f} us "
              f"({(r['mean_latency_s']/theory_chain-1)*100:+.2f}% vs theory)  "
              f"peak bytes/pkt={bpp:,.0f}")
        if "nspy_raw_mean_wait_s" in r:
            print(f"       (ns.py raw PacketSink mean wait = {r['nspy_raw_mean_wait_s']*1e6:.3f} us;"
                  f" includes one inter-arrival gap of the generator)")

    h1 = run_simpy_chain(N, **{**cfg, "hops": 1})
    h1_soj = h1["mean_latency_s"] - cfg["delay_s"]
    print(f"hop-1 only (simpy, hops=1): sojourn = {h1_soj*1e6:.3f} us vs M/D/1 {theory_md1*1e6:.3f} us "
          f"({(h1_soj/theory_md1-1)*100:+.2f}%)")
    for other in ("simpy", "heapq"):
        d = abs(results["ns.py"]["mean_latency_s"] - results[other]["mean_latency_s"])
        print(f"same sample path check: |ns.py - {other}| mean latency = {d:.3e} s")
    for name, fn in (("ns.py", run_nspy_chain), ("simpy", run_simpy_chain)):
        fast, slow = _verify_event_count(fn)
        print(f"event-count check {name}: _eid={fast} step()={slow} "
              f"{'OK' if fast == slow else 'MISMATCH'}")


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser(description="ns.py/simpy baselines: a self-check, or one whole ns.py process")
    ap.add_argument("--process", type=int, metavar="PACKETS", help="run the ns.py chain once (PEER_CHAIN)")
    ap.add_argument("--out", help="with --process: write the per-packet records as CSV here")
    a = ap.parse_args()
    if a.process:
        nspy_process(a.process, a.out)
    else:
        _self_check()

"""netns-sim's own measuring program: UDP ping-pong and a bounded flood (stdlib only).

Run as a script inside a namespace (``ip netns exec NS python pingpong.py MODE ...``); it
prints one JSON line.  Every loop is bounded in count *and* time:

- ``serve ADDR PORT``: echo each datagram back; exits after ``--count`` messages, a
  ``quit`` datagram, ``--idle`` seconds without traffic or ``--max-s`` seconds in all.
- ``rr ADDR PORT``: send ``--count`` small datagrams one at a time (after ``--warmup``)
  and time each round trip with ``time.perf_counter_ns``; a lost reply is counted after
  ``--idle`` seconds and the loop goes on; stops at ``--max-s``.
- ``sink ADDR PORT``: count datagrams (for the packet rate); same exits as ``serve``.
- ``flood ADDR PORT``: send ``--count`` datagrams back to back, stop at ``--max-s``.

Python adds its interpreter and system-call overhead (several microseconds per message) to
every message, the same on every setup; netns-sim fits it as the application cost.
"""

import argparse
import json
import socket
import struct
import sys
import time


def _timeout(s: socket.socket, seconds: float) -> None:
    sec = int(seconds)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, struct.pack("ll", sec, int((seconds - sec) * 1e6)))


def _quit(s: socket.socket) -> None:
    """Tell the peer to stop; it may already have stopped (an ICMP port unreachable then
    surfaces as ECONNREFUSED on a connected socket), which is fine."""
    try:
        s.send(b"quit")
    except OSError:
        pass


def serve(a) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.addr, a.port))
    _timeout(s, a.idle)
    print("ready", flush=True)
    deadline = time.monotonic() + a.max_s
    n = 0
    sink = a.mode == "sink"
    first = last = 0
    while n < a.count and time.monotonic() < deadline:
        try:
            data, peer = s.recvfrom(2048)
        except (BlockingIOError, socket.timeout, InterruptedError):
            if n:
                break
            continue
        if data == b"quit":
            break
        if sink:
            last = time.perf_counter_ns()
            if not n:
                first = last
        else:
            s.sendto(data, peer)
        n += 1
    out = {"mode": a.mode, "messages": n}
    if sink and n > 1:
        out["pps"] = (n - 1) * 1e9 / (last - first)
    return out


def rr(a) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((a.addr, a.port))
    _timeout(s, a.idle)
    msg = b"x" * a.size
    deadline = time.monotonic() + a.max_s
    clock = time.perf_counter_ns
    times = []
    lost = 0
    for i in range(a.warmup + a.count):
        if time.monotonic() > deadline:
            break
        t0 = clock()
        s.send(msg)
        try:
            s.recv(2048)
        except (BlockingIOError, socket.timeout, InterruptedError):
            lost += 1
            continue
        t1 = clock()
        if i >= a.warmup:
            times.append(t1 - t0)
    _quit(s)
    times.sort()
    n = len(times)
    out = {"mode": "rr", "round_trips": n, "lost": lost}
    if n:
        out.update(median_ns=times[n // 2], p10_ns=times[n // 10], p90_ns=times[(9 * n) // 10],
                   mean_ns=sum(times) / n)
    return out


def flood(a) -> dict:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect((a.addr, a.port))
    msg = b"x" * a.size
    deadline = time.monotonic() + a.max_s
    sent = 0
    t0 = time.perf_counter_ns()
    while sent < a.count:
        try:
            s.send(msg)
        except OSError:          # ENOBUFS and friends: the packet is lost, go on
            pass
        sent += 1
        if not sent & 1023 and time.monotonic() > deadline:
            break
    dt = time.perf_counter_ns() - t0
    time.sleep(0.05)
    for _ in range(3):
        _quit(s)
    return {"mode": "flood", "sent": sent, "send_pps": sent * 1e9 / max(dt, 1)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["serve", "rr", "sink", "flood"])
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=200)
    p.add_argument("--size", type=int, default=32, help="UDP payload bytes")
    p.add_argument("--idle", type=float, default=1.0, help="seconds without traffic that end a wait")
    p.add_argument("--max-s", type=float, default=30.0, help="hard time limit, seconds")
    a = p.parse_args(argv)
    if not (1 <= a.count <= 10_000_000 and 0 < a.max_s <= 600):
        p.error("--count must be 1..1e7 and --max-s 0..600")
    fn = {"serve": serve, "sink": serve, "rr": rr, "flood": flood}[a.mode]
    print(json.dumps(fn(a)), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

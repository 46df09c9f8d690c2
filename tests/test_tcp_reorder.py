"""The real kernel's reordering of one TCP stream on a veth path (``python -m sim.calibrate
tcp-reorder``, `sim.calibrate.tcpreorder`) beside the model's (issue 15): arithmetic on the
recorded measurement, and the model's side of the comparison in docs/tcp.md."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sim.calibrate import tcpreorder

RECORD = Path(__file__).resolve().parents[1] / "sim/profiles/amd-epyc-6.18.44.tcp-reorder.json"
NETSTAT = """TcpExt: SyncookiesSent TCPOFOQueue TCPSACKReorder
TcpExt: 0 17 4
IpExt: InNoRoutes InTruncatedPkts
IpExt: 0 0
"""


def test_netstat_and_its_deltas_are_read_by_name():
    c = tcpreorder.parse_netstat(NETSTAT)
    assert c == {"SyncookiesSent": 0, "TCPOFOQueue": 17, "TCPSACKReorder": 4}
    d = tcpreorder.delta({"TCPOFOQueue": 10, "InSegs": 100}, {"TCPOFOQueue": 17, "InSegs": 1100},
                         ("InSegs", "TCPOFOQueue", "TCPDSACKOldSent"))
    assert d == {"InSegs": 1000, "TCPOFOQueue": 7, "TCPDSACKOldSent": 0}
    with pytest.raises(RuntimeError):
        tcpreorder.parse_netstat("IpExt: a\nIpExt: 1\n")


def test_the_record_says_one_cpu_never_reorders_and_two_sometimes_do():
    """The recorded run (AMD EPYC VM, Linux 6.18.44): with sender and sink on one CPU every
    segment arrived in order in every round; on two CPUs some rounds queued segments out of
    order and the sender retransmitted some, never more than 1 in 1,000.  Its medians are
    those of its rounds."""
    rec = json.loads(RECORD.read_text())
    one, two = rec["placements"]["0,0"], [rec["placements"][k] for k in ("1,0", "0,1")]
    assert all(r["counters"]["TCPOFOQueue"] == 0 and r["counters"]["RetransSegs"] == 0 for r in one["runs"])
    assert any(r["counters"]["TCPOFOQueue"] > 0 for p in two for r in p["runs"])
    for p in [one, *two]:
        for r in p["runs"]:
            assert r["ofo_per_segment"] == tcpreorder.rates(r["counters"])["ofo_per_segment"] < 1e-3
        assert p["ofo_per_segment"] == sorted(r["ofo_per_segment"] for r in p["runs"])[len(p["runs"]) // 2]
    assert len(tcpreorder.table(rec)) == 2 + len(rec["placements"])


@pytest.mark.parametrize("placements", ["1", "x,0", "", "1,0;-1,0"])
def test_bad_placements_are_refused_before_anything_is_built(placements, tmp_path, capsys):
    from sim.calibrate.__main__ import main
    out = tmp_path / "x.json"
    assert main(["tcp-reorder", "--placements", placements, "--out", str(out)]) == 2
    assert "--placements takes sender,sink CPU pairs" in capsys.readouterr().err
    assert not out.exists()


def test_the_model_on_one_core_keeps_a_veth_streams_order_as_the_kernel_does():
    """The model's side of the one-CPU placement: a per-segment stream between two containers of
    one host (l2-routed: veth, the root forwards, veth), sender and reader on core 0: every
    pass runs on the one core's backlog, in order, so every data packet arrives in the order it
    was sent and nothing is retransmitted (the record above: 0 in every round)."""
    from sim.core.simulate import simulate
    sc = {"hosts": [{"name": "h", "scheme": "l2-routed", "cores": 2, "namespaces": 2}],
          "flows": [{"kind": "tcp_stream", "src": "h:ns0", "dst": "h:ns1", "src_core": 0, "dst_core": 0,
                     "tcp": {"gso": False}}],
          "run": {"duration_ns": 5e6, "warmup_ns": 5e5, "seed": 1}}
    r = simulate(sc)
    p = r.packets
    data = p[(p.direction == "request") & (p.size_bytes > 60) & (p.status == "delivered")].sort_values("t_done_ns")
    assert len(data) > 500 and (data.packet_id.diff().dropna() > 0).all()
    assert r.flows.retransmits[0] == 0

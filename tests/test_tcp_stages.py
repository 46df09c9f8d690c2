"""TCP's own stage costs (issue 15, `sim.core.tcpcost`, docs/tcp.md "Reads and CPU"): which
stages a TCP segment pays, against the profile; and the per-segment arithmetic of
``python -m sim.calibrate tcp-stages`` (`sim.calibrate.tcpstages`) on recorded counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sim.calibrate import perfstages, tcpstages
from sim.core.costs import load_profile
from sim.core.simulate import simulate
from sim.core.tcp import HEADER_BYTES

UDP_ONLY = ("socket_send_ns", "socket_enqueue_ns")
TCP_ONLY = ("tcp_send_ns", "tcp_rcv_ns", "tcp_ack_ns", "tcp_data_ack_ns")


def _records(scheme: str, flows: list[dict]) -> pd.DataFrame:
    chunks: list[pd.DataFrame] = []
    sc = {"hosts": [{"name": "h", "scheme": scheme, "namespaces": 2, "cores": 2}], "flows": flows,
          "run": {"duration_ns": 5e6, "warmup_ns": 1e6}}
    simulate(sc, on_packets=chunks.append)
    return pd.concat(chunks, ignore_index=True)


@pytest.mark.parametrize("scheme", ["host", "l2-bridged", "l2-routed"])
def test_tcp_segments_pay_tcp_stages_and_udp_datagrams_do_not(scheme):
    """Flow 0 is TCP_RR, flow 1 UDP rr, on one host: every delivered TCP row pays tcp_send and
    tcp_rcv (a pure ACK: tcp_ack) at the profile's price for its size and no socket_send,
    socket_enqueue or route_output; every UDP row pays no TCP stage and socket_send at its
    price."""
    prof = load_profile("default")
    df = _records(scheme, [{"kind": "tcp_rr", "src": "h:ns0", "dst": "h:ns1", "size": {"bytes": 64}},
                           {"kind": "rr", "src": "h:ns0", "dst": "h:ns1", "size": {"bytes": 64}}])
    df = df[df.status == "delivered"]
    tcp, udp = df[df.flow == "flow0"], df[df.flow == "flow1"]
    assert len(tcp) > 50 and len(udp) > 50

    def price(stage: str, size: pd.Series) -> pd.Series:
        c = prof.stages[stage]
        return c.base_ns + c.per_byte_ns * size
    assert (tcp[list(UDP_ONLY) + ["route_output_ns"]] == 0).all().all()
    assert tcp.tcp_send_ns.to_numpy() == pytest.approx(price("tcp_send", tcp.size_bytes).to_numpy())
    ack = tcp.size_bytes == HEADER_BYTES                  # pure ACKs (the handshake's third, a lone one)
    assert tcp[~ack].tcp_rcv_ns.to_numpy() == pytest.approx(price("tcp_rcv", tcp[~ack].size_bytes).to_numpy())
    assert (tcp[~ack].tcp_ack_ns == 0).all() and (tcp[ack].tcp_rcv_ns == 0).all()
    assert tcp[ack].tcp_ack_ns.to_numpy() == pytest.approx(price("tcp_ack", tcp[ack].size_bytes).to_numpy())
    assert (udp[list(TCP_ONLY)] == 0).all().all()
    assert udp.socket_send_ns.to_numpy() == pytest.approx(price("socket_send", udp.size_bytes).to_numpy())
    assert udp.socket_enqueue_ns.to_numpy() == pytest.approx(price("socket_enqueue", udp.size_bytes).to_numpy())
    # early demux: the pass that delivers to the TCP socket does not route; a forwarding pass
    # (l2-routed's router namespace) still does, and "host" delivers over lo, whose skb keeps its route
    tcp_in, udp_in = tcp.route_input_ns.unique(), udp.route_input_ns.unique()
    assert len(tcp_in) == 1 and len(udp_in) == 1
    expected = {"host": (0.0, 0.0), "l2-bridged": (0.0, udp_in[0])}.get(scheme)
    if expected is not None:
        assert (tcp_in[0], udp_in[0]) == expected and (scheme == "host" or udp_in[0] > 0)
    else:
        assert 0 < tcp_in[0] < udp_in[0]


def test_only_a_data_segment_that_acknowledges_new_data_pays_tcp_data_ack():
    """tcp_rcv_established calls tcp_ack for a data segment only when its ack_seq != snd_una
    (net/ipv4/tcp_input.c): every TCP_RR request and response acknowledges the message before
    it, so each pays tcp_data_ack on top of tcp_rcv; only the first few do not: the
    connection's first request, and those sent before pingpong mode, whose pure ACK went
    first (a delayed ACK before the reply, docs/tcp.md); a one-way stream's data segments carry an unchanging
    ACK and never pay it, nor does a pure ACK.  A segment that waited in a socket's backlog has
    both priced at the owner's release (`Host.tcp_rcv_ns`)."""
    from types import SimpleNamespace

    from sim.core.tcpcost import ACKS_DATA, PURE_ACK, SEGMENT
    prof = load_profile("default").stages
    rr = _records("host", [{"kind": "tcp_rr", "src": "h:ns0", "dst": "h:ns1", "size": {"bytes": 64}}])
    stream = _records("host", [{"kind": "tcp_stream", "src": "h:ns0", "dst": "h:ns1"}])
    rr, stream = rr[rr.status == "delivered"], stream[stream.status == "delivered"]
    rr_data = rr[rr.size_bytes > HEADER_BYTES + 8]          # not the SYN, SYN-ACK or pure ACKs
    price = prof["tcp_data_ack"].base_ns
    assert price > 0 and len(rr_data) > 50 and len(stream) > 50
    paid = rr_data.tcp_data_ack_ns
    assert set(paid.unique()) <= {0.0, price} and (paid.iloc[4:] == price).all()
    assert (rr_data.tcp_rcv_ns == prof["tcp_rcv"].base_ns).all()
    assert (stream.tcp_data_ack_ns == 0).all() and (rr[rr.size_bytes <= HEADER_BYTES + 8].tcp_data_ack_ns == 0).all()
    host = simulate({"hosts": [{"name": "h", "scheme": "host", "namespaces": 2}],
                     "flows": [{"kind": "tcp_rr", "src": "h:ns0", "dst": "h:ns1"}],
                     "run": {"duration_ns": 1e5}}).model.hosts[0]
    data = host.tcp_rcv_ns(SimpleNamespace(tcp=SEGMENT, size=100))
    assert data == prof["tcp_rcv"].base_ns
    assert host.tcp_rcv_ns(SimpleNamespace(tcp=SEGMENT | ACKS_DATA, size=100)) == data + price
    assert host.tcp_rcv_ns(SimpleNamespace(tcp=SEGMENT | PURE_ACK, size=52)) == prof["tcp_ack"].base_ns


def test_tcp_rr_transaction_cpu_is_the_sum_of_its_packets_stage_costs():
    """A TCP_RR flow's CPU in the window (`tcp_stats`' per-GB figure from the flow's own
    accounting) equals the sum of the stage columns of its rows that ended in the window."""
    chunks: list[pd.DataFrame] = []
    sc = {"hosts": [{"name": "h", "scheme": "l2-bridged", "namespaces": 2, "cores": 2}],
          "flows": [{"kind": "tcp_rr", "src": "h:ns0", "dst": "h:ns1", "size": {"bytes": 64}}],
          "run": {"duration_ns": 5e6, "warmup_ns": 1e6}}
    res = simulate(sc, on_packets=chunks.append)
    df = pd.concat(chunks, ignore_index=True)
    stage_cols = [c for c in df.columns if c.endswith("_ns") and c[:-3] in res.profile.stages]
    done = df[(df.status == "delivered") & (df.t_done_ns >= 1e6)]
    flow = res.model.flows[0]
    assert flow.window_cpu_ns == pytest.approx(done[stage_cols].to_numpy().sum(), rel=1e-9)
    per_packet = done[stage_cols].sum(axis=1)
    prof = res.profile
    rcv = np.where(done.size_bytes == HEADER_BYTES, prof.stages["tcp_ack"].base_ns,
                   prof.stages["tcp_rcv"].base_ns + prof.stages["tcp_data_ack"].base_ns)   # each acks the one before
    tcp = done.tcp_send_ns + done.tcp_rcv_ns + done.tcp_ack_ns + done.tcp_data_ack_ns
    assert tcp.to_numpy() == pytest.approx(
        prof.stages["tcp_send"].base_ns + prof.stages["tcp_send"].per_byte_ns * done.size_bytes.to_numpy() + rcv)
    assert (per_packet > tcp).all()


# Seven samples of `perf script -F comm,pid,tid,cpu,period,ip,sym` recorded on the 2-vCPU AMD
# EPYC VM (Linux 6.18.44) during a `sockperf tp --tcp` flood over a veth pair, offloads off
# (the receive path runs nested in the sender's softirq; ACKs go out from tcp_recvmsg).  Chains
# cut short of their root where the rest repeats an earlier sample's frames.
TCP_SCRIPT = """sockperf  2846/2846  [001]    1001001
\tffffffff8208aa70 tcp_send_delayed_ack
\tffffffff82091ea0 tcp_v4_do_rcv
\tffffffff81e858e1 __release_sock
\tffffffff81e8599b release_sock
\tffffffff8206ff0a tcp_recvmsg
\tffffffff81e7bd4b sock_recvmsg
\tffffffff81e7f2b7 __sys_recvfrom
\tffffffff81e7f380 __x64_sys_recvfrom
\tffffffff8225a101 do_syscall_64
\tffffffff81000130 entry_SYSCALL_64_after_hwframe
\t          10a9e3 __libc_recvfrom

sockperf  2848/2848  [000]    1001001
\tffffffff81e90341 skb_try_coalesce
\tffffffff82077365 tcp_try_coalesce
\tffffffff82077468 tcp_queue_rcv
\tffffffff8207f206 tcp_rcv_established
\tffffffff82091ea0 tcp_v4_do_rcv
\tffffffff8209435a tcp_v4_rcv
\tffffffff820540bc ip_protocol_deliver_rcu
\tffffffff820542d1 ip_local_deliver_finish
\tffffffff81eb77dd __netif_receive_skb_one_core
\tffffffff81eb7ac3 process_backlog
\tffffffff81eb81b1 __napi_poll
\tffffffff81eb878e net_rx_action
\tffffffff8136979d handle_softirqs
\tffffffff813691ab do_softirq.part.0
\tffffffff81369a94 __local_bh_enable_ip
\tffffffff81eb48c4 __dev_queue_xmit
\tffffffff8205892c ip_finish_output2
\tffffffff8205b09f ip_output
\tffffffff8205b5bb __ip_queue_xmit
\tffffffff820853f4 __tcp_transmit_skb
\tffffffff82086f1d tcp_write_xmit
\tffffffff82088375 __tcp_push_pending_frames
\tffffffff8206cba0 tcp_sendmsg_locked
\tffffffff8206d66b tcp_sendmsg
\tffffffff81e7f039 __sys_sendto
\tffffffff81e7f080 __x64_sys_sendto
\tffffffff8225a101 do_syscall_64
\tffffffff81000130 entry_SYSCALL_64_after_hwframe
\t          10acb3 __libc_sendto

sockperf  2848/2848  [000]    1001001
\tffffffff8226e079 _raw_spin_unlock_irqrestore
\tffffffff81e82f7e sock_def_readable
\tffffffff8207e196 tcp_data_queue
\tffffffff8207eb4e tcp_rcv_established
\tffffffff82091ea0 tcp_v4_do_rcv
\tffffffff8209435a tcp_v4_rcv

sockperf  2848/2848  [000]    1001001
\tffffffff817087f4 fdget
\tffffffff81e7eec6 __sys_sendto
\tffffffff81e7f080 __x64_sys_sendto
\tffffffff8225a101 do_syscall_64
\tffffffff81000130 entry_SYSCALL_64_after_hwframe
\t          10acb3 __libc_sendto

sockperf  2848/2848  [000]    1001001
\tffffffff8206bd83 tcp_stream_alloc_skb
\tffffffff8206c9ae tcp_sendmsg_locked
\tffffffff8206d66b tcp_sendmsg
\tffffffff81e7f039 __sys_sendto

sockperf  2846/2846  [001]    1001001
\tffffffff8206192f __inet_lookup_established
\tffffffff82092d37 tcp_v4_early_demux
\tffffffff82053a9b ip_rcv_finish_core
\tffffffff820549ea ip_rcv
\tffffffff81eb77dd __netif_receive_skb_one_core
\tffffffff81eb7ac3 process_backlog

sockperf  2846/2846  [001]    1001001
\tffffffff82084b82 __tcp_transmit_skb
\tffffffff8206e790 tcp_recvmsg_locked
\tffffffff8206feff tcp_recvmsg
\tffffffff81e7bd4b sock_recvmsg
"""


def test_tcp_perf_samples_are_charged_to_tcp_categories_and_priced_per_segment():
    """The recorded excerpt: an ACK's timer set-up, a data segment's transmit from recvmsg and the
    write queue's skb allocation go to tcp_send, the segment's queueing to tcp_rcv, its wake-up
    to socket_enqueue, early demux's lookup to socket_lookup, the syscall layer to socket_send.
    Per segment (1,000 data segments, 500 pure ACKs): x 1000/1500; the model's stages sum
    tcp_send + socket_send and tcp_rcv + socket_enqueue."""
    samples = perfstages.parse_script(TCP_SCRIPT)
    c = perfstages.Classifier()
    assert [c.classify(s.chain) for s in samples] == ["tcp_send", "tcp_rcv", "socket_enqueue", "socket_send",
                                                      "tcp_send", "socket_lookup", "tcp_send"]
    run = perfstages.attribute(samples, packets=1000, pids=set())
    assert run["ns_per_packet"]["tcp_send"] == pytest.approx(3 * 1001.001)
    run["counts_in_window"] = {"received": 1000, "sent": 1000, "acks": 500, "rx_skbs": 1000, "rx_bytes": 98000}
    seg = tcpstages.per_segment(run)
    assert seg["ns_per_segment"]["tcp_send"] == pytest.approx(2 * 1001.001)
    assert seg["model_stage_ns_per_segment"] == {"tcp_send": pytest.approx(4 * 1001.001 * 2 / 3),
                                                 "tcp_rcv": pytest.approx(2 * 1001.001 * 2 / 3)}
    assert seg["model_stage_ns_per_rx_skb"] == {"tcp_send": pytest.approx(4 * 1001.001),   # one segment per skb:
                                                "tcp_rcv": pytest.approx(2 * 1001.001)}    # per data segment
    assert seg["acks_per_data_segment"] == 0.5 and seg["data_segments_per_rx_skb"] == 1.0
    assert seg["payload_bytes_per_data_segment"] == 32.0
    assert seg["rx_bytes_per_skb"] == 98.0            # 32 payload + 66 Ethernet/IP/TCP(timestamps)
    run["counts_in_window"]["rx_payload"] = 33_000    # the one-read payload counter wins where logged
    assert tcpstages.per_segment(run)["payload_bytes_per_data_segment"] == 33.0


NET_DEV = """Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:  500000    5000    0    0    0     0          0         0   500000    5000    0    0    0     0       0          0
 veth0:  98000    1000    0    0    0     0          0         0    66000    1000    0    0    0     0       0          0
 veth1:  9800     100    0    0    0     0          0         0    0    0    0    0    0     0       0          0
"""


def test_the_payload_counter_takes_one_header_per_packet_off_the_same_read(monkeypatch):
    """rx_bytes less 66 bytes per rx_packet, over the devices but lo, from one read of net/dev."""
    import io
    monkeypatch.setattr(perfstages, "open", lambda path: io.StringIO(NET_DEV), raising=False)
    assert perfstages.netdev_reader(1, "rx_packets")() == 1100
    assert perfstages.netdev_reader(1, "rx_bytes")() == 107800
    assert perfstages.netdev_reader(1, "rx_bytes", ("rx_packets", 66))() == 107800 - 66 * 1100

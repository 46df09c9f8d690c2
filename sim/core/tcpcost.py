"""Which stages a TCP segment runs where a UDP datagram runs the scheme's stages (issue 15).

A scheme's trips list the stages of a UDP datagram.  A TCP segment - data or pure ACK - runs
the same passes with four differences, each read in Linux 6.18 and seen in ``perf`` on it
(``python -m sim.calibrate tcp-stages``, docs/calibration.md):

- ``socket_send`` -> ``tcp_send``: the segment is built and sent by TCP (net/ipv4/tcp.c
  tcp_sendmsg_locked; net/ipv4/tcp_output.c tcp_write_xmit, __tcp_transmit_skb, or
  __tcp_send_ack for a pure ACK), not by udp_sendmsg;
- ``socket_enqueue`` -> ``tcp_rcv``: received by TCP (net/ipv4/tcp_ipv4.c tcp_v4_rcv ->
  tcp_v4_do_rcv; net/ipv4/tcp_input.c tcp_rcv_established: tcp_ack, tcp_data_queue /
  tcp_queue_rcv, __tcp_ack_snd_check, tcp_data_ready's wake-up), not by udp_queue_rcv_skb;
  a pure ACK (`PURE_ACK`) runs ``tcp_ack`` there instead: tcp_ack and tcp_clean_rtx_queue,
  with nothing queued and no reader woken (tcp_rcv_established's fast path for a pure ACK,
  or its slow path without data: no tcp_data_queue, no tcp_data_ready); a data segment whose
  ACK acknowledges new data (`ACKS_DATA`: TCP_RR's request and response each acknowledge the
  message before) runs ``tcp_data_ack`` after its ``tcp_rcv``: tcp_rcv_established's fast
  path calls tcp_ack for a data segment only when ``ack_seq != snd_una``, and a bulk
  stream's data segments carry an unchanging ACK, so ``tcp_rcv`` (measured on them) holds
  none of that work;
- no ``route_output``: a connected TCP socket transmits on its cached route
  (net/ipv4/ip_output.c __ip_queue_xmit: __sk_dst_check, a route lookup only when the cache
  is empty);
- no ``route_input`` in the pass that delivers to the socket: early demux
  (net/ipv4/ip_input.c ip_rcv_finish_core -> tcp_v4_early_demux, which finds the established
  socket and sets its cached input route sk->sk_rx_dst on the skb), so ip_route_input_noref
  is not called.  A forwarding namespace has no such socket and still routes.

The pass "delivers to the socket" when it runs ``socket_lookup`` (early demux's lookup,
__inet_lookup_established, stays priced there).  UDP datagrams keep the scheme's stages.

A data packet whose payload its sender's write already copied into the socket (`WRITTEN`: a
``tcp_stream`` sender's writes, `sim.core.tcp`) pays no ``tcp_send`` per-byte term in its
pass: tcp_sendmsg_locked copied the bytes (skb_copy_to_page_nocache) in the write, and
tcp_write_xmit / __tcp_transmit_skb send a clone of the queued skb without copying again.

A segment that reaches a socket its application owns (`BACKLOGGED`: a read or write job of
that side runs, `sim.core.tcp`) pays no ``tcp_rcv`` in the pass that delivers it: tcp_v4_rcv
finds sock_owned_by_user and only queues the skb on the socket's backlog (tcp_add_backlog);
tcp_v4_do_rcv runs later, in the owner's release_sock (__release_sock), and the flow charges
that ``tcp_rcv`` to the owner's thread then (`Host.tcp_rcv_ns`).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache

from sim.core.stages import STAGE_INDEX

SOCKET_SEND = STAGE_INDEX["socket_send"]
SOCKET_ENQUEUE = STAGE_INDEX["socket_enqueue"]
SOCKET_LOOKUP = STAGE_INDEX["socket_lookup"]
ROUTE_INPUT = STAGE_INDEX["route_input"]
ROUTE_OUTPUT = STAGE_INDEX["route_output"]
TCP_SEND = STAGE_INDEX["tcp_send"]
TCP_RCV = STAGE_INDEX["tcp_rcv"]
TCP_ACK = STAGE_INDEX["tcp_ack"]
TCP_DATA_ACK = STAGE_INDEX["tcp_data_ack"]
TCP_INSTEAD = {SOCKET_SEND: (TCP_SEND,), SOCKET_ENQUEUE: (TCP_RCV,)}
TCP_INSTEAD_ACK = {SOCKET_SEND: (TCP_SEND,), SOCKET_ENQUEUE: (TCP_ACK,)}
TCP_INSTEAD_DATA_ACK = {SOCKET_SEND: (TCP_SEND,), SOCKET_ENQUEUE: (TCP_RCV, TCP_DATA_ACK)}
# a packet's `tcp` (`sim.core.packet.Packet.tcp`) is 0/False for a UDP datagram, else bits:
SEGMENT = 1     # a TCP segment (True)
WRITTEN = 2     # a data segment whose bytes a write copied
BACKLOGGED = 4  # its socket was owned when the pass that delivers it began: no tcp_rcv in that pass
PURE_ACK = 8    # a segment without data (not a SYN): it runs tcp_ack where a data segment runs tcp_rcv
ACKS_DATA = 16  # a data segment whose ACK acknowledges new data: tcp_data_ack after its tcp_rcv


@lru_cache(maxsize=None)
def tcp_stages(stages: tuple, ack: bool = False, acks_data: bool = False) -> tuple:
    """A pass's compiled stages (`sim.core.schemes.CompiledStage`) as a TCP segment runs them
    (see the module docstring), `ack`: a pure ACK's, `acks_data`: a data segment's that
    acknowledges new data; the same tuple when nothing changes."""
    delivers = any(st.index == SOCKET_LOOKUP for st in stages)
    instead = TCP_INSTEAD_ACK if ack else TCP_INSTEAD_DATA_ACK if acks_data else TCP_INSTEAD
    out = tuple(replace(st, index=i) if st.index in instead else st
                for st in stages
                if st.index != ROUTE_OUTPUT and not (delivers and st.index == ROUTE_INPUT)
                for i in instead.get(st.index, (st.index,)))
    return stages if out == stages else out


# the stages a delivered segment's TCP receive runs (in place of socket_enqueue), by its bits:
# what a segment that waited in the socket's backlog has its owner pay at the release
RECEIVE_STAGES = frozenset(i for m in (TCP_INSTEAD, TCP_INSTEAD_ACK, TCP_INSTEAD_DATA_ACK) for i in m[SOCKET_ENQUEUE])


def receive_stages(tcp) -> tuple[int, ...]:
    """The stage indexes of TCP segment `tcp`'s receive (`tcp_stages`' in place of socket_enqueue)."""
    if tcp & PURE_ACK:
        return TCP_INSTEAD_ACK[SOCKET_ENQUEUE]
    return (TCP_INSTEAD_DATA_ACK if tcp & ACKS_DATA else TCP_INSTEAD)[SOCKET_ENQUEUE]


def segment_stages(stages: tuple, tcp) -> tuple:
    """The stages a packet whose `sim.core.packet.Packet.tcp` is `tcp` runs for `stages`."""
    return tcp_stages(stages, bool(tcp & PURE_ACK), bool(tcp & ACKS_DATA)) if tcp else stages


@lru_cache(maxsize=None)
def receives(stages: tuple) -> bool:
    """Whether a pass of these compiled stages enqueues to the receiving socket (its
    ``socket_enqueue``, ``tcp_rcv`` for a TCP segment)."""
    return any(st.index == SOCKET_ENQUEUE for st in stages)

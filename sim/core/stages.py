"""The catalogue of stages a packet can cross in one host, named after the Linux path.

Each stage has a *layer* (for the per-layer latency breakdown) and an *entry kind*: what the
`per_entry_ns` term of its cost counts.  Entry kinds:

- ``none``        the stage has no per-entry term;
- ``sock_chain``  socket hash-chain entries examined until the destination socket matches;
- ``nf:<chain>``  netfilter rules in that chain of the namespace the stage runs in;
- ``fib``         depth of the FIB trie of that namespace, ceil(log2(routes + 1));
- ``classifier``  layer-2.5 classifier rules on the host (one per namespace).

Stage order in `STAGES` is the column order of the per-packet records.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class StageInfo:
    name: str
    layer: str
    entry_kind: str
    doc: str


STAGES: tuple[StageInfo, ...] = (
    StageInfo("vnic_demux", "nic", "none", "NIC demultiplexes by destination MAC into a per-namespace queue"),
    StageInfo("nic_rx", "nic", "none", "driver RX, skb allocation (NAPI poll)"),
    StageInfo("l2_demux", "l2", "none", "netif_receive_skb: protocol demultiplexing"),
    StageInfo("bridge", "l2", "none", "br_handle_frame, FDB lookup, br_forward"),
    StageInfo("l25_classify", "l2.5", "classifier", "netfilter classifier choosing the namespace"),
    StageInfo("ip_rcv", "l3", "none", "ip_rcv, ip_rcv_finish: header checks"),
    StageInfo("nf_prerouting", "netfilter", "nf:prerouting", "PREROUTING hook"),
    StageInfo("route_input", "l3", "fib", "ip_route_input: FIB lookup"),
    StageInfo("nf_local_in", "netfilter", "nf:input", "LOCAL_IN hook"),
    StageInfo("nf_forward", "netfilter", "nf:forward", "FORWARD hook"),
    StageInfo("ip_forward", "l3", "none", "ip_forward: TTL and checks"),
    StageInfo("socket_send", "l4", "none", "udp_sendmsg: syscall entry and copy from user"),
    StageInfo("route_output", "l3", "fib", "ip_route_output: FIB lookup"),
    StageInfo("nf_local_out", "netfilter", "nf:output", "LOCAL_OUT hook"),
    StageInfo("ip_output", "l3", "none", "ip_output, neighbour output"),
    StageInfo("nf_postrouting", "netfilter", "nf:postrouting", "POSTROUTING hook"),
    StageInfo("dev_xmit", "l2", "none", "dev_queue_xmit and qdisc"),
    StageInfo("veth_xmit", "veth", "none", "pass-through device: scrub skb, netif_rx into the peer's backlog"),
    StageInfo("ns_switch", "namespace", "none", "switch the packet's namespace context (a short-cut)"),
    StageInfo("socket_lookup", "l4", "sock_chain", "UDP socket hash lookup, walking the chain"),
    StageInfo("ns_match", "namespace", "sock_chain", "namespace compare on each chain entry"),
    StageInfo("socket_enqueue", "l4", "none", "sock_queue_rcv_skb and wake-up"),
    StageInfo("nic_tx", "nic", "none", "driver transmit, DMA map, doorbell"),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
STAGE_INDEX: dict[str, int] = {name: i for i, name in enumerate(STAGE_NAMES)}
STAGE_INFO: dict[str, StageInfo] = {s.name: s for s in STAGES}
NF_CHAINS: tuple[str, ...] = ("prerouting", "input", "forward", "output", "postrouting")

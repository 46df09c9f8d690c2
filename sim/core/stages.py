"""The catalogue of stages a packet can cross in one host, named after the Linux path.

Each stage has a *layer* (for the per-layer latency breakdown) and an *entry kind*: what the
`per_entry_ns` term of its cost counts.  Entry kinds:

- ``none``        the stage has no per-entry term;
- ``sock_chain``  socket hash-chain entries examined until the destination socket matches;
- ``nf:<chain>``  netfilter rules in that chain of the namespace the stage runs in;
- ``fib``         depth of the FIB trie of that namespace, ceil(log2(routes + 1));
- ``classifier``  layer-2.5 classifier rules on the host (one per namespace).

Each stage also belongs to one *group* of `GROUPS` (the report's "where the time goes"
breakdown, `analysis.stages`): the one list of stages and groups for the whole program.

A scenario's (or a profile's) ``stages:`` block may *declare* more stages (docs/stages.md):
the stages of a run are `STAGES` followed by the declared ones (`StageSet`, built by
`stage_set`), and that order is the column order of the per-packet records.
"""

from dataclasses import dataclass, field

# group key -> its label in the report, in report order.  A declared stage names one key.
GROUPS: dict[str, str] = {
    "nic": "NIC rx/tx, VNIC demux",
    "l2": "L2 demux, bridge",
    "ip": "IP input, routing, forward",
    "netfilter": "netfilter hooks",
    "l25": "L2.5 classifier",
    "output": "IP output, dev/veth xmit",
    "namespace": "namespace switch/match",
    "socket": "socket send/lookup/enqueue",
    "bpf": "BPF programs",
    "other": "other stages",
}
# What a declared stage's per_entry_ns may count (the netfilter kinds belong to the nf_* stages).
DECLARED_ENTRY_KINDS: tuple[str, ...] = ("none", "sock_chain", "fib", "classifier")


@dataclass(frozen=True)
class StageInfo:
    name: str
    layer: str
    entry_kind: str
    doc: str
    group: str = "other"


STAGES: tuple[StageInfo, ...] = (
    StageInfo("vnic_demux", "nic", "none", "NIC demultiplexes by destination MAC into a per-namespace queue", "nic"),
    StageInfo("nic_rx", "nic", "none", "driver RX, skb allocation (NAPI poll)", "nic"),
    StageInfo("l2_demux", "l2", "none", "netif_receive_skb: protocol demultiplexing", "l2"),
    StageInfo("bridge", "l2", "none", "br_handle_frame, FDB lookup, br_forward", "l2"),
    StageInfo("l25_classify", "l2.5", "classifier", "netfilter classifier choosing the namespace", "l25"),
    StageInfo("ip_rcv", "l3", "none", "ip_rcv, ip_rcv_finish: header checks", "ip"),
    StageInfo("nf_prerouting", "netfilter", "nf:prerouting", "PREROUTING hook", "netfilter"),
    StageInfo("route_input", "l3", "fib", "ip_route_input: FIB lookup", "ip"),
    StageInfo("nf_local_in", "netfilter", "nf:input", "LOCAL_IN hook", "netfilter"),
    StageInfo("nf_forward", "netfilter", "nf:forward", "FORWARD hook", "netfilter"),
    StageInfo("ip_forward", "l3", "none", "ip_forward: TTL and checks", "ip"),
    StageInfo("socket_send", "l4", "none", "udp_sendmsg: syscall entry and copy from user", "socket"),
    StageInfo("route_output", "l3", "fib", "ip_route_output: FIB lookup", "ip"),
    StageInfo("nf_local_out", "netfilter", "nf:output", "LOCAL_OUT hook", "netfilter"),
    StageInfo("ip_output", "l3", "none", "ip_output, neighbour output", "output"),
    StageInfo("nf_postrouting", "netfilter", "nf:postrouting", "POSTROUTING hook", "netfilter"),
    StageInfo("dev_xmit", "l2", "none", "dev_queue_xmit and qdisc", "output"),
    StageInfo("veth_xmit", "veth", "none", "pass-through device: scrub skb, netif_rx into the peer's backlog",
              "output"),
    StageInfo("ns_switch", "namespace", "none", "switch the packet's namespace context (a short-cut)", "namespace"),
    StageInfo("socket_lookup", "l4", "sock_chain", "UDP socket hash lookup, walking the chain", "socket"),
    StageInfo("ns_match", "namespace", "sock_chain", "namespace compare on each chain entry", "namespace"),
    StageInfo("socket_enqueue", "l4", "none", "sock_queue_rcv_skb and wake-up", "socket"),
    StageInfo("nic_tx", "nic", "none", "driver transmit, DMA map, doorbell", "nic"),
    # Issue 15's modern container paths (appended, so the columns of the older stages keep their places)
    StageInfo("tc_bpf", "bpf", "none", "a tc/tcx BPF program run (sch_handle_ingress/egress, netkit_run) and its "
              "redirect helper (skb_do_redirect)", "bpf"),
    StageInfo("netkit_xmit", "netkit", "none", "netkit_xmit: peer checks, skb scrub, __netif_rx into the peer's "
              "backlog (NETKIT_PASS)", "output"),
    StageInfo("ipvlan_demux", "l2", "none", "ipvlan_addr_lookup: the port's hash of slave addresses", "l2"),
    StageInfo("macvlan_demux", "l2", "none", "macvlan_hash_lookup: the port's hash of macvlan MACs", "l2"),
    # Issue 15's TCP costs (appended likewise): a TCP segment (data or pure ACK) runs these in place
    # of socket_send and socket_enqueue (sim.core.tcpcost)
    StageInfo("tcp_send", "l4", "none", "tcp_sendmsg / __tcp_send_ack, tcp_write_xmit, __tcp_transmit_skb, "
              "ip_queue_xmit on the socket's cached route", "socket"),
    StageInfo("tcp_rcv", "l4", "none", "tcp_v4_rcv after the lookup: tcp_rcv_established (tcp_data_queue, "
              "ACK decision; an ACK of new data is tcp_data_ack, a sleeping reader's wake-up is priced per "
              "wake)", "socket"),
    # __netif_receive_skb_core's second round in the same softirq pass, after bpf_redirect_peer or
    # an RX handler's RX_HANDLER_ANOTHER changed skb->dev (appended likewise)
    StageInfo("l2_another_round", "l2", "none", "__netif_receive_skb_core's another_round on the new device "
              "(taps, RX handler, ingress hook, protocol delivery; no NAPI poll or backlog)", "l2"),
    # A NAPI poll's own work, paid once per napi_poll call by the packet that opens it, not per
    # packet (appended likewise; sim.core.cpu charges it, the schemes never list it)
    StageInfo("napi_poll", "l2", "none", "net_rx_action's per-poll work: __napi_poll, the poll function's entry "
              "and exit (process_backlog's splice of the backlog under its lock, napi_complete_done); paid by "
              "the first packet of each poll", "l2"),
    # A pure ACK's receive, apart from a data segment's tcp_rcv (appended likewise; sim.core.tcpcost)
    StageInfo("tcp_ack", "l4", "none", "tcp_v4_rcv after the lookup for a segment without data: "
              "tcp_ack, tcp_clean_rtx_queue (frees what it acknowledges); nothing queued, nobody woken",
              "socket"),
    # A data segment's piggybacked ACK of new data, on top of its tcp_rcv (appended likewise;
    # sim.core.tcpcost)
    StageInfo("tcp_data_ack", "l4", "none", "tcp_ack called by tcp_rcv_established for a data segment whose "
              "ACK acknowledges new data (ack_seq != snd_una): tcp_clean_rtx_queue, the RTT sample, "
              "congestion control, the RTO re-armed", "socket"),
)

STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
STAGE_INDEX: dict[str, int] = {name: i for i, name in enumerate(STAGE_NAMES)}
STAGE_INFO: dict[str, StageInfo] = {s.name: s for s in STAGES}
NF_CHAINS: tuple[str, ...] = ("prerouting", "input", "forward", "output", "postrouting")


@dataclass(frozen=True)
class StageSet:
    """The stages of one run: the built-in `STAGES`, then the declared ones (their order is the
    order of the ``<stage>_ns`` columns and of the cost vectors' indices)."""

    stages: tuple[StageInfo, ...] = STAGES
    names: tuple[str, ...] = field(init=False)
    index: dict[str, int] = field(init=False)
    info: dict[str, StageInfo] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", tuple(s.name for s in self.stages))
        object.__setattr__(self, "index", {n: i for i, n in enumerate(self.names)})
        object.__setattr__(self, "info", {s.name: s for s in self.stages})

    @property
    def declared(self) -> dict[str, str]:
        """Declared stage -> its group key."""
        return {s.name: s.group for s in self.stages[len(STAGES):]}

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(f"{n}_ns" for n in self.names)

    def key(self) -> tuple:
        return tuple((s.name, s.entry_kind) for s in self.stages[len(STAGES):])


BUILTIN_STAGES = StageSet()


def stage_set(declared: dict[str, tuple[str, str, str]]) -> StageSet:
    """The built-in stages plus `declared` (name -> (group, entry kind, doc)), checked."""
    if not declared:
        return BUILTIN_STAGES
    extra = []
    for name, (group, kind, doc) in declared.items():
        problem = declared_problem(name, group, kind)
        if problem:
            raise ValueError(problem)
        extra.append(StageInfo(name, "declared", kind, doc or "declared stage", group))
    return StageSet(STAGES + tuple(extra))


def declared_problem(name: str, group: str, kind: str = "none") -> str:
    """Why `name` cannot be declared as a stage of `group`, or ''."""
    if name in STAGE_INFO:
        return (f"stage {name!r} is built in; a declared stage needs a new name (to change a built-in "
                f"stage's cost use cost_overrides.stages.{name})")
    if not name.isidentifier():
        return f"stage name {name!r}: use letters, digits and underscores (e.g. tc_policy)"
    if group not in GROUPS:
        return f"stage {name!r}: unknown group {group!r}; known groups: {', '.join(GROUPS)}"
    if kind not in DECLARED_ENTRY_KINDS:
        return (f"stage {name!r}: unknown entries {kind!r}; a declared stage's per_entry_ns counts one of "
                f"{', '.join(DECLARED_ENTRY_KINDS)}")
    return ""

"""Per-packet records: compact columnar buffers during the run, pandas frames at the end.

Every packet a flow sends ends as exactly one row per destination (a multicast packet has one
row per group member; rows of members that had not fanned out into copies yet share one
``packet_id``; ``origin_id`` is the id the flow gave the packet): ``delivered`` (reached its
socket, or left the NIC when its destination is the wire), ``dropped`` (with a reason and
the node where it happened) or ``in_flight`` (still inside the model when the run ended).

What is stored per row is only what varies per packet: ids, destination, size, times, an
outcome byte (delivered, in flight, or the drop reason), the route and the number of its
links crossed, link queueing, and per pass the id of its interned cost vector (`CostBook`)
and its queueing time (plus a cost scale factor when pass costs are randomised).  The
source endpoints come from the flow table, stage costs from the cost book and wire time from
the route table.  A row is packed by one `struct` call into a byte buffer (`ROW_FIELDS`:
61 bytes, read back as a numpy structured array); a pass adds 12 bytes to three arrays.  Ids
are 32-bit: at most 2**31 packets a run.

``nf_chains`` is a bit mask of the netfilter hook points (namespace side x chain) the
packet's passes crossed, registered or not (`sim.core.netfilter`: bit ``side * 5 + chain``,
sides src container, src host's root, dst host's root, dst container; chains in
`sim.core.stages.NF_CHAINS` order).  ``src_netns``/``dst_netns`` are namespace codes
(`sim.core.nscodes`: -1 the wire, -2 the root namespace); ``trip`` is the packet's journey
label (`TRIP_LABELS`, `sim.core.trips`).

`Recorder.columns()` expands the rows into the documented columns (`PacketColumns`;
`Recorder.frame()` makes them a DataFrame), with one ``<stage>_ns``
column per stage of the run (`sim.core.stages.STAGES`, then the declared stages); for every delivered row
``latency_ns = sum(<stage>_ns) + wire_ns + link_queue_ns + queue_ns`` up to float rounding.
``wire_ns`` is serialization plus propagation over the links fully crossed.
"""

from __future__ import annotations

import functools
import struct
from array import array
from typing import TYPE_CHECKING

import numpy as np

from sim.core.stages import STAGE_NAMES

if TYPE_CHECKING:                   # pandas is imported by frame(): validating a scenario needs none
    import pandas as pd

STATUS = ("delivered", "dropped", "in_flight")
DIRECTIONS = ("request", "response")
DELIVERED, IN_FLIGHT = 0, 1          # outcome codes; 2 + k = dropped with reason k (k >= 1)
# The ``trip`` column: a packet's whole way (`sim.core.trips`); codes are positions, append only.
TRIP_LABELS = ("wire_to_ns", "ns_to_wire", "ns_to_ns", "ns_to_remote_ns", "multicast",
               "wire_to_root", "root_to_wire", "root_to_ns", "ns_to_root", "ns_to_self", "root_to_self",
               "root_to_remote_ns", "ns_to_remote_root", "root_to_remote_root", "multicast_local")
STAGE_COLUMNS = tuple(f"{s}_ns" for s in STAGE_NAMES)
MAX_PASS_COLUMNS = 6
MAX_HOPS = 64                        # route code * MAX_HOPS + links crossed

# One record row, packed little-endian with no padding: (column, struct code).
ROW_FIELDS = (("packet_id", "i"), ("origin_id", "i"), ("flow", "i"), ("seq", "i"), ("direction", "b"),
              ("trip", "b"), ("scheme", "b"), ("dst_host", "h"), ("dst_ns", "i"), ("size_bytes", "i"),
              ("t_sent_ns", "d"), ("t_done_ns", "d"), ("status", "b"), ("drop_node", "h"), ("path", "i"),
              ("link_queue_ns", "d"), ("n_passes", "b"))
ROW = struct.Struct("<" + "".join(code for _, code in ROW_FIELDS))
ROW_DTYPE = np.dtype([(name, "<" + {"i": "i4", "b": "i1", "h": "i2", "d": "f8"}[code])
                      for name, code in ROW_FIELDS])
assert ROW.size == ROW_DTYPE.itemsize


@functools.lru_cache(maxsize=64)
def _category_dtype(categories: tuple) -> "pd.CategoricalDtype":
    """One dtype per list of categories: building it (an Index of the labels) took most of a
    column's `from_codes`, nine columns per frame."""
    import pandas as pd
    return pd.CategoricalDtype(list(categories))


def _coded(codes: np.ndarray, categories) -> "pd.Categorical":
    """``pd.Categorical.from_codes(codes, categories=categories)``, with the dtype built once per label list."""
    import pandas as pd
    return pd.Categorical.from_codes(codes, dtype=_category_dtype(tuple(categories)))


class PacketColumns:
    """Packet records as the documented columns, before any DataFrame is built.

    `values` maps every column, in the frame's order, to a numpy array with one entry per
    row.  A coded column (a key of `labels`: flow, direction, trip, scheme, src_host,
    dst_host, status, drop_reason, drop_node) holds integer codes into its labels
    (``labels[name]``, a tuple of strings; -1 = missing): `frame()` makes it a categorical.
    The sweep's Parquet writer and the summary read the columns as they are."""

    def __init__(self, values: dict[str, np.ndarray], labels: dict[str, tuple[str, ...]]) -> None:
        self.values = values
        self.labels = labels

    def __len__(self) -> int:
        return len(self.values["packet_id"])

    def frame(self) -> pd.DataFrame:
        """The columns as a DataFrame, coded ones as categoricals of their labels."""
        import pandas as pd
        return pd.DataFrame({name: _coded(v, self.labels[name]) if name in self.labels else v
                             for name, v in self.values.items()})


BLOCK_ROWS = 4096                   # rows per buffer block (250 KB; see Recorder._reset)


class CostBook:
    """Interns pass cost vectors: sparse ``((stage_index, cost_ns), ...)`` with the netfilter
    hook points the pass crosses (a bit mask, `sim.core.netfilter.policy_bit`) -> small int id.
    The mask is a function of the pass, so packets store nothing for it: a row's
    ``nf_chains`` is the OR of its passes' masks, computed when the frame is built."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}
        self._vectors: list[tuple] = []
        self._masks: list[int] = []

    def intern(self, vector: tuple, mask: int = 0) -> int:
        key = (vector, mask)
        vid = self._ids.get(key)
        if vid is None:
            vid = self._ids[key] = len(self._vectors)
            self._vectors.append(vector)
            self._masks.append(mask)
        return vid

    def vector(self, vid: int) -> tuple:
        """The sparse ``((stage_index, cost_ns), ...)`` vector of id `vid`."""
        return self._vectors[vid]

    def mask(self, vid: int) -> int:
        """The hook-point mask of vector id `vid`."""
        return self._masks[vid]

    def masks(self) -> np.ndarray:
        """The hook-point mask of every vector id."""
        return np.asarray(self._masks or [0], dtype=np.int64)

    def matrix(self, n_stages: int = len(STAGE_NAMES)) -> np.ndarray:
        """Dense (n_vectors, n_stages) cost matrix in ns."""
        m = np.zeros((max(len(self._vectors), 1), n_stages))
        for vid, vec in enumerate(self._vectors):
            for idx, cost in vec:
                m[vid, idx] += cost
        return m


class RouteBook:
    """Routes by code, with per-link prefix sums for wire time.  Code 0: no link."""

    def __init__(self) -> None:
        self._ns_per_byte = [[0.0]]          # prefix sums, one list per route
        self._delay_ns = [[0.0]]

    def add(self, links) -> int:
        if len(links) >= MAX_HOPS:
            raise ValueError(f"a route of {len(links)} links is longer than {MAX_HOPS - 1}")
        per_byte, delay = [0.0], [0.0]
        for link in links:
            per_byte.append(per_byte[-1] + link.ns_per_byte)
            delay.append(delay[-1] + link.delay_ns)
        self._ns_per_byte.append(per_byte)
        self._delay_ns.append(delay)
        return len(self._ns_per_byte) - 1

    def wire_ns(self, path: np.ndarray, size_bytes: np.ndarray) -> np.ndarray:
        """Serialization + propagation of the links crossed, for path codes and sizes."""
        per_byte = np.zeros(len(self._ns_per_byte) * MAX_HOPS)
        delay = np.zeros_like(per_byte)
        for r, (pb, d) in enumerate(zip(self._ns_per_byte, self._delay_ns)):
            per_byte[r * MAX_HOPS: r * MAX_HOPS + len(pb)] = pb
            delay[r * MAX_HOPS: r * MAX_HOPS + len(d)] = d
        return size_bytes * per_byte[path] + delay[path]


class Recorder:
    """Append-only columnar buffers, one entry per finished packet copy.

    `labels` maps code tables: ``scheme``, ``node``, ``reason`` (index 0 = no drop),
    ``flow`` (names) and ``flow_src`` (the (host code, namespace) each flow sends from).
    """

    def __init__(self, labels: dict[str, list], random_costs: bool = False,
                 sink=None, chunk_rows: int = 250_000, stage_names: tuple[str, ...] = STAGE_NAMES) -> None:
        """`stage_names` are the run's stages (built-ins, then declared ones: `StageSet.names`).
        `sink`, if given, receives `PacketColumns` of `chunk_rows` rows whenever that many
        are buffered (streaming to Parquet row groups keeps memory flat); `frame()` and
        `columns()` then return only the rows not yet handed to the sink."""
        self.labels = labels
        self.stage_columns = tuple(f"{s}_ns" for s in stage_names)
        self.random_costs = random_costs   # store per-pass scale factors only when they vary
        self.cost_book = CostBook()
        self.routes = RouteBook()
        self.sink = sink
        self.chunk_rows = chunk_rows
        self._pack = ROW.pack
        self.flushed_rows = 0
        self._reset()

    def _reset(self) -> None:
        # ROW-packed rows in blocks (a growing buffer's reallocation would briefly hold the old
        # and the new copy of every row); `rows` is the block filling now, `_room` its size.
        self.blocks: list[bytearray] = []
        self._blocked_rows = 0
        self.rows = bytearray()
        self._next_room()
        self.pass_vec = array("i")
        self.pass_queue_ns = array("d")
        self.pass_scale = array("d")

    def _next_room(self) -> None:
        """Size the filling block: BLOCK_ROWS, or up to `chunk_rows` when a sink takes chunks."""
        rows = BLOCK_ROWS
        if self.sink is not None:
            rows = min(rows, self.chunk_rows - self._blocked_rows)
        self._room = rows * ROW.size

    def __len__(self) -> int:
        return self._blocked_rows + len(self.rows) // ROW.size

    def _tables(self) -> list[np.ndarray]:
        """The buffered rows as structured-array views, one per block."""
        return [np.frombuffer(b, dtype=ROW_DTYPE) for b in (*self.blocks, self.rows)]

    def column(self, name: str) -> np.ndarray:
        """One column of the buffered rows (a copy), by its `ROW_FIELDS` name."""
        return np.concatenate([t[name] for t in self._tables()])

    def _block_full(self) -> None:
        """The filling block is full: hand the rows to the sink when `chunk_rows` are
        buffered, else start a new block."""
        if self.sink is not None and len(self) >= self.chunk_rows:
            self.flush()
            return
        self.blocks.append(self.rows)
        self._blocked_rows += len(self.rows) // ROW.size
        self.rows = bytearray()
        self._next_room()

    def count(self, outcome: int) -> int:
        return sum(int((t["status"] == outcome).sum()) for t in self._tables())

    def flush(self) -> None:
        """Hand the buffered rows to the sink as one `PacketColumns` and empty the buffers."""
        if self.sink is not None and len(self):
            chunk = self.columns()
            self.flushed_rows += len(chunk)
            self._reset()
            self.sink(chunk)

    def add(self, pkt, dst_host: int, dst_ns: int, t_done_ns: float, outcome: int,
            drop_node: int = -1, trip: int = -1) -> None:
        """Append one row for packet copy `pkt` (see `sim.core.packet.Packet`), labelled with
        its own trip or `trip` when given (a member the copy stands for on another host)."""
        passes = pkt.passes
        self.rows += self._pack(pkt.pid, pkt.origin, pkt.flow, pkt.seq, pkt.direction,
                                pkt.trip if trip < 0 else trip, pkt.scheme, dst_host, dst_ns, pkt.size,
                                pkt.t_sent, t_done_ns, outcome, drop_node, pkt.route_code * MAX_HOPS + pkt.hop,
                                pkt.link_queue_ns, len(passes) // 3)
        self.pass_vec.extend(passes[0::3])
        self.pass_queue_ns.extend(passes[1::3])
        if self.random_costs:
            self.pass_scale.extend(passes[2::3])
        if len(self.rows) >= self._room:
            self._block_full()

    def frame(self) -> pd.DataFrame:
        """The buffered rows as a DataFrame with the documented columns."""
        return self.columns().frame()

    def _stage_sums(self, n: int, row_of_pass: np.ndarray, vec: np.ndarray, scale: np.ndarray) -> np.ndarray:
        """(n_stages, n) ns: each row's stage costs, the sum over its passes (row `row_of_pass`,
        cost vector `vec`, scaled by `scale`) in pass order, one contiguous row per stage.
        Only the stages some vector of the run costs are summed (the others stay 0, as 0 + 0
        would): a run often costs a third of them (rfc2006-schemes: 12 of 33), and this sum was
        most of building the columns."""
        stage = np.zeros((len(self.stage_columns), n))
        if len(vec):
            costs = self.cost_book.matrix(len(self.stage_columns))
            used = np.flatnonzero(costs.any(axis=0))
            sums = np.zeros((len(used), n))
            np.add.at(sums.T, row_of_pass, costs[:, used][vec] * scale[:, None])
            stage[used] = sums
        return stage

    def columns(self) -> PacketColumns:
        """The buffered rows as the documented columns, before any DataFrame is built."""
        def arr(buf, dtype):
            return np.frombuffer(buf, dtype=dtype).copy() if len(buf) else np.zeros(0, dtype)

        tables = self._tables()
        rows = tables[0] if len(tables) == 1 else np.concatenate(tables)   # every use below copies or casts
        n = len(rows)
        n_passes = rows["n_passes"].astype(np.int64)
        row_of_pass = np.repeat(np.arange(n), n_passes)
        vec = arr(self.pass_vec, np.int32)
        qns = arr(self.pass_queue_ns, np.float64)
        scale = arr(self.pass_scale, np.float64) if self.random_costs else np.ones(len(vec))
        stage = self._stage_sums(n, row_of_pass, vec, scale)
        nf_chains = np.zeros(n, dtype=np.int64)
        if len(vec):
            np.bitwise_or.at(nf_chains, row_of_pass, self.cost_book.masks()[vec])
        queue = np.bincount(row_of_pass, weights=qns, minlength=n) if n else np.zeros(0)
        first_pass = np.concatenate(([0], np.cumsum(n_passes)[:-1])) if n else np.zeros(0, np.int64)
        pos_in_row = np.arange(len(vec)) - np.repeat(first_pass, n_passes)

        outcome = rows["status"]
        status = np.where(outcome == DELIVERED, 0, np.where(outcome == IN_FLIGHT, 2, 1)).astype(np.int8)
        reason = np.where(outcome >= 2, outcome - 1, 0).astype(np.int8)
        t_sent = rows["t_sent_ns"].copy()
        t_done = rows["t_done_ns"].copy()
        flow = rows["flow"].copy()
        direction = rows["direction"].copy()
        src = np.asarray(self.labels["flow_src"], dtype=np.int64).reshape(-1, 2)
        dst0 = np.asarray(self.labels["flow_dst"], dtype=np.int64).reshape(-1, 2)
        src_of = np.where(direction[:, None] == 0, src[flow] if n else src[:0], dst0[flow] if n else dst0[:0])
        size = rows["size_bytes"].copy()
        lab = self.labels
        cols = {
            "packet_id": rows["packet_id"].astype(np.int64),
            "origin_id": rows["origin_id"].astype(np.int64),
            "flow": flow,
            "seq": rows["seq"].astype(np.int64),
            "direction": direction,
            "trip": rows["trip"].copy(),
            "scheme": rows["scheme"].copy(),
            "src_host": src_of[:, 0].astype(np.int16),
            "src_netns": src_of[:, 1].astype(np.int32),
            "dst_host": rows["dst_host"].copy(),
            "dst_netns": rows["dst_ns"].copy(),
            "size_bytes": size,
            "t_sent_ns": t_sent,
            "t_done_ns": t_done,
            "latency_ns": np.where(status == 0, t_done - t_sent, np.nan),
            "status": status,
            "drop_reason": reason,
            "drop_node": rows["drop_node"].copy(),
            "n_passes": n_passes.astype(np.int8),
            "nf_chains": nf_chains.astype(np.int32),
        }
        for i, name in enumerate(self.stage_columns):
            cols[name] = stage[i]
        cols["wire_ns"] = self.routes.wire_ns(rows["path"].astype(np.int64), size.astype(np.float64))
        cols["link_queue_ns"] = rows["link_queue_ns"].copy()
        cols["queue_ns"] = queue
        for k in range(MAX_PASS_COLUMNS):
            col = np.full(n, np.nan)
            sel = pos_in_row == k
            col[row_of_pass[sel]] = qns[sel]
            cols[f"pass{k + 1}_queue_ns"] = col
        labels = {"flow": tuple(lab["flow"]), "direction": DIRECTIONS, "trip": TRIP_LABELS,
                  "scheme": tuple(lab["scheme"]), "src_host": tuple(lab["node"]), "dst_host": tuple(lab["node"]),
                  "status": STATUS, "drop_reason": tuple(lab["reason"]), "drop_node": tuple(lab["node"])}
        return PacketColumns(cols, labels)

"""Per-packet records: compact columnar buffers during the run, pandas frames at the end.

Every packet a flow sends ends as exactly one row per destination (a multicast packet has one
row per group member; rows of members that had not fanned out into copies yet share one
``packet_id``; ``origin_id`` is the id the flow gave the packet): ``delivered`` (reached its
socket, or left the NIC when its destination is the wire), ``dropped`` (with a reason and
the node where it happened) or ``in_flight`` (still inside the model when the run ended).

Stage costs are not stored per packet: each pass stores the id of its interned cost vector
(`CostBook`), its queueing time and a scale factor (1 unless pass costs are randomised), so a
row costs about 70 bytes plus 12 per pass.  `Recorder.frame()` expands them into one
``<stage>_ns`` column per stage of `sim.stages.STAGES`, exactly: for every finished row,
``latency_ns = sum(<stage>_ns) + wire_ns + link_queue_ns + queue_ns`` up to float rounding.
"""

from __future__ import annotations

from array import array

import numpy as np
import pandas as pd

from sim.stages import STAGE_NAMES

STATUS = ("delivered", "dropped", "in_flight")
DELIVERED, DROPPED, IN_FLIGHT = 0, 1, 2
TRIP_LABELS = ("wire_to_ns", "ns_to_wire", "ns_to_ns", "ns_to_remote_ns", "multicast")
STAGE_COLUMNS = tuple(f"{s}_ns" for s in STAGE_NAMES)
MAX_PASS_COLUMNS = 6
NO_NAMESPACE = -1          # the wire, or the root namespace


class CostBook:
    """Interns pass cost vectors: sparse ``((stage_index, ns), ...)`` -> small int id."""

    def __init__(self) -> None:
        self._ids: dict[tuple, int] = {}
        self._vectors: list[tuple] = []

    def intern(self, vector: tuple) -> int:
        vid = self._ids.get(vector)
        if vid is None:
            vid = self._ids[vector] = len(self._vectors)
            self._vectors.append(vector)
        return vid

    def matrix(self) -> np.ndarray:
        """Dense (n_vectors, n_stages) cost matrix in ns."""
        m = np.zeros((max(len(self._vectors), 1), len(STAGE_NAMES)))
        for vid, vec in enumerate(self._vectors):
            for idx, cost in vec:
                m[vid, idx] += cost
        return m


class Recorder:
    """Append-only columnar buffers, one entry per finished packet copy."""

    def __init__(self, labels: dict[str, list[str]], random_costs: bool = False,
                 sink=None, chunk_rows: int = 250_000) -> None:
        """`sink`, if given, receives a DataFrame of `chunk_rows` rows whenever that many
        are buffered (streaming to Parquet row groups keeps memory flat); `frame()` then
        returns only the rows not yet handed to the sink."""
        self.labels = labels
        self.random_costs = random_costs   # store per-pass scale factors only when they vary
        self.cost_book = CostBook()
        self.sink = sink
        self.chunk_rows = chunk_rows
        self.flushed_rows = 0
        self._reset()

    def _reset(self) -> None:
        self.packet_id = array("q")
        self.origin_id = array("q")
        self.flow = array("i")
        self.seq = array("q")
        self.direction = array("b")
        self.trip = array("b")
        self.scheme = array("b")
        self.src_host = array("h")
        self.src_ns = array("i")
        self.dst_host = array("h")
        self.dst_ns = array("i")
        self.size_bytes = array("i")
        self.t_sent_ns = array("d")
        self.t_done_ns = array("d")
        self.status = array("b")
        self.reason = array("b")
        self.drop_node = array("h")
        self.wire_ns = array("d")
        self.link_queue_ns = array("d")
        self.n_passes = array("b")
        self.pass_vec = array("i")
        self.pass_queue_ns = array("d")
        self.pass_scale = array("d")

    def flush(self) -> None:
        """Hand the buffered rows to the sink as one DataFrame and empty the buffers."""
        if self.sink is not None and len(self):
            chunk = self.frame()
            self.flushed_rows += len(chunk)
            self._reset()
            self.sink(chunk)

    def __len__(self) -> int:
        return len(self.packet_id)

    def add(self, pkt, dst_host: int, dst_ns: int, t_done_ns: float, status: int,
            reason: int = 0, drop_node: int = -1) -> None:
        """Append one row for packet copy `pkt` (see `sim.packet.Packet`)."""
        self.packet_id.append(pkt.pid)
        self.origin_id.append(pkt.origin)
        self.flow.append(pkt.flow)
        self.seq.append(pkt.seq)
        self.direction.append(pkt.direction)
        self.trip.append(pkt.trip)
        self.scheme.append(pkt.scheme)
        self.src_host.append(pkt.src_host)
        self.src_ns.append(pkt.src_ns)
        self.dst_host.append(dst_host)
        self.dst_ns.append(dst_ns)
        self.size_bytes.append(pkt.size)
        self.t_sent_ns.append(pkt.t_sent)
        self.t_done_ns.append(t_done_ns)
        self.status.append(status)
        self.reason.append(reason)
        self.drop_node.append(drop_node)
        self.wire_ns.append(pkt.wire_ns)
        self.link_queue_ns.append(pkt.link_queue_ns)
        passes = pkt.passes
        self.n_passes.append(len(passes) // 3)
        self.pass_vec.extend(passes[0::3])
        self.pass_queue_ns.extend(passes[1::3])
        if self.random_costs:
            self.pass_scale.extend(passes[2::3])
        if self.sink is not None and len(self.packet_id) >= self.chunk_rows:
            self.flush()

    def frame(self) -> pd.DataFrame:
        """All rows as a DataFrame with the documented columns (see module docstring)."""
        n = len(self)
        n_passes = np.frombuffer(self.n_passes, dtype=np.int8).astype(np.int64) if n else np.zeros(0, np.int64)
        row_of_pass = np.repeat(np.arange(n), n_passes)
        vec = np.frombuffer(self.pass_vec, dtype=np.int32) if len(self.pass_vec) else np.zeros(0, np.int32)
        qns = np.frombuffer(self.pass_queue_ns, dtype=np.float64) if len(self.pass_queue_ns) else np.zeros(0)
        scale = np.frombuffer(self.pass_scale, dtype=np.float64) if self.random_costs and len(vec) else np.ones(len(vec))
        matrix = self.cost_book.matrix()
        stage = np.zeros((n, len(STAGE_NAMES)))
        if len(vec):
            np.add.at(stage, row_of_pass, matrix[vec] * scale[:, None])
        queue = np.zeros(n)
        if len(qns):
            np.add.at(queue, row_of_pass, qns)
        first_pass = np.concatenate(([0], np.cumsum(n_passes)[:-1])) if n else np.zeros(0, np.int64)
        pos_in_row = np.arange(len(vec)) - np.repeat(first_pass, n_passes)

        def arr(buf, dtype):
            return np.frombuffer(buf, dtype=dtype).copy() if len(buf) else np.zeros(0, dtype)

        status = arr(self.status, np.int8)
        t_sent = arr(self.t_sent_ns, np.float64)
        t_done = arr(self.t_done_ns, np.float64)
        lab = self.labels
        cols = {
            "packet_id": arr(self.packet_id, np.int64),
            "origin_id": arr(self.origin_id, np.int64),
            "flow": pd.Categorical.from_codes(arr(self.flow, np.int32), categories=lab["flow"]),
            "seq": arr(self.seq, np.int64),
            "direction": pd.Categorical.from_codes(arr(self.direction, np.int8), categories=["request", "response"]),
            "trip": pd.Categorical.from_codes(arr(self.trip, np.int8), categories=list(TRIP_LABELS)),
            "scheme": pd.Categorical.from_codes(arr(self.scheme, np.int8), categories=lab["scheme"]),
            "src_host": pd.Categorical.from_codes(arr(self.src_host, np.int16), categories=lab["node"]),
            "src_netns": arr(self.src_ns, np.int32),
            "dst_host": pd.Categorical.from_codes(arr(self.dst_host, np.int16), categories=lab["node"]),
            "dst_netns": arr(self.dst_ns, np.int32),
            "size_bytes": arr(self.size_bytes, np.int32),
            "t_sent_ns": t_sent,
            "t_done_ns": t_done,
            "latency_ns": np.where(status == DELIVERED, t_done - t_sent, np.nan),
            "status": pd.Categorical.from_codes(status, categories=list(STATUS)),
            "drop_reason": pd.Categorical.from_codes(arr(self.reason, np.int8), categories=lab["reason"]),
            "drop_node": pd.Categorical.from_codes(arr(self.drop_node, np.int16), categories=lab["node"]),
            "n_passes": n_passes.astype(np.int8),
        }
        for i, name in enumerate(STAGE_COLUMNS):
            cols[name] = stage[:, i]
        cols["wire_ns"] = arr(self.wire_ns, np.float64)
        cols["link_queue_ns"] = arr(self.link_queue_ns, np.float64)
        cols["queue_ns"] = queue
        for k in range(MAX_PASS_COLUMNS):
            col = np.full(n, np.nan)
            sel = pos_in_row == k
            col[row_of_pass[sel]] = qns[sel]
            cols[f"pass{k + 1}_queue_ns"] = col
        return pd.DataFrame(cols)

"""TCP congestion control for `sim.core.tcp`: Reno and CUBIC behind one interface.

A `Side` (one sender) holds one controller, made by `make_cc(tcp_spec)`.  `sim.core.tcp` calls
it where Linux calls the `tcp_congestion_ops` hooks (include/net/tcp.h):

- `on_acked(side, rtt_ns, now_ns)`: ``pkts_acked`` (tcp_clean_rtx_queue), for every ACK of new
  data, in any state; ``rtt_ns`` is the ACK's RTT sample (None: none);
- `cong_avoid(side, acked, now_ns)`: ``cong_avoid`` (tcp_cong_avoid), for an ACK of ``acked``
  new segments outside recovery: slow start, then the algorithm's growth;
- `ssthresh(side)`: ``ssthresh`` (tcp_init_cwnd_reduction on fast retransmit, tcp_enter_loss
  on the first RTO expiry): the new ssthresh, segments;
- `on_loss_state(side, now_ns)`: ``set_state(TCP_CA_Loss)`` (tcp_enter_loss, every RTO expiry);
- `on_tx_start(side, idle_ns, now_ns)`: ``cwnd_event(CA_EVENT_TX_START)`` (tcp_event_data_sent:
  data leaves with nothing in flight, ``idle_ns`` after the last data left).

Windows are in segments; the side's ``cwnd`` is changed only through `Side.set_cwnd` (its
trace).  docs/tcp.md cites the kernel functions each rule follows; in short, Reno is
tcp_reno_cong_avoid / tcp_reno_ssthresh (net/ipv4/tcp_cong.c) and CUBIC is net/ipv4/tcp_cubic.c
(cubictcp_cong_avoid, bictcp_update, cubictcp_recalc_ssthresh, cubictcp_state,
cubictcp_cwnd_event, cubictcp_acked, hystart_update) on the model's ns clock instead of
jiffies.
"""

from __future__ import annotations

import math
from typing import Optional, Protocol, Sized

from sim.frontdoor.scenario import GSO_LEGACY_MAX_BYTES

# tcp_cubic.c module parameters (their defaults) and constants
BICTCP_BETA_SCALE = 1024
BETA = 717                      # beta: cwnd after a loss is 717/1024 of it
BIC_SCALE = 41                  # bic_scale: C = bic_scale * 10 / 1024 (cube_rtt_scale / 2^10)
CUBIC_C_PER_S3 = BIC_SCALE * 10 / 1024     # 0.4004 segments per s^3
# beta_scale (cubictcp_register), integer arithmetic as there: 15, i.e. Reno's estimate grows
# one segment per 15/8 cwnd segments acked, 3 (1 - beta) / (1 + beta) per RTT
FRIENDLY_SCALE = 8 * (BICTCP_BETA_SCALE + BETA) // 3 // (BICTCP_BETA_SCALE - BETA)
CNT_RECALC_NS = 1e9 / 32        # bictcp_update: cnt kept while cwnd unchanged for <= HZ/32
DELAY_HOLDOFF_NS = 1e9          # cubictcp_acked: no delay samples for HZ after an epoch starts
HYSTART_LOW_WINDOW = 16         # hystart_low_window, segments
HYSTART_ACK_DELTA_NS = 2e6      # hystart_ack_delta_us, 2000 us
HYSTART_MIN_SAMPLES = 8
HYSTART_DELAY_MIN_NS = 4e6      # HYSTART_DELAY_MIN, 4 ms
HYSTART_DELAY_MAX_NS = 16e6     # HYSTART_DELAY_MAX, 16 ms
HYSTART_ACK_DELAY_CAP_NS = 1e6  # hystart_ack_delay: at most USEC_PER_MSEC
PACING_SS_RATIO = 2.0           # net.ipv4.tcp_pacing_ss_ratio 200 (tcp_update_pacing_rate)
PACING_CA_RATIO = 1.2           # net.ipv4.tcp_pacing_ca_ratio 120


class SideLike(Protocol):
    """What a controller reads and writes of a sender (`sim.core.tcp.Side`)."""

    cwnd: float
    ssthresh: float
    cwnd_cnt: int
    cwnd_limited: bool
    max_out: int
    snd_una: int
    snd_nxt: int
    srtt: float
    mss: int

    @property
    def out(self) -> Sized:
        """The segments in flight."""

    def set_cwnd(self, cwnd: float) -> None: ...


def is_cwnd_limited(s: SideLike) -> bool:
    """tcp_is_cwnd_limited (include/net/tcp.h): in slow start, while cwnd is below twice the
    most segments in flight in the last window (max_packets_out), so a sender limited by its
    application or send buffer still doubles what it used; after, whether the last window was
    cwnd-limited (tcp_cwnd_validate, `sim.core.tcp.TcpFlow._push`)."""
    if s.cwnd < s.ssthresh:
        return s.cwnd < 2 * s.max_out
    return s.cwnd_limited


def slow_start(s: SideLike, acked: int) -> int:
    """tcp_slow_start (tcp_cong.c): cwnd += acked up to ssthresh; returns the acked segments
    left over for congestion avoidance."""
    new = min(s.cwnd + acked, s.ssthresh)
    acked -= int(new - s.cwnd)
    if new != s.cwnd:
        s.set_cwnd(new)
    return acked


def cong_avoid_ai(s: SideLike, w: int, acked: int) -> None:
    """tcp_cong_avoid_ai (tcp_cong.c): cwnd += 1 per `w` segments acked (credits in
    ``cwnd_cnt``; credits earned at a higher w apply gently: one segment, then restart)."""
    cwnd = s.cwnd
    if s.cwnd_cnt >= w:
        s.cwnd_cnt = 0
        cwnd += 1
    s.cwnd_cnt += acked
    if s.cwnd_cnt >= w:
        delta = s.cwnd_cnt // w
        s.cwnd_cnt -= delta * w
        cwnd += delta
    if cwnd != s.cwnd:
        s.set_cwnd(cwnd)


class CongestionControl:
    """The hooks (module docstring); the base does what Linux does for a hook an algorithm
    leaves out (tcp_ca_event and friends skip a NULL hook)."""

    def on_acked(self, s: SideLike, rtt_ns: Optional[float], now_ns: float) -> None:
        """pkts_acked: an ACK of new data with RTT sample `rtt_ns` (None: no sample)."""

    def cong_avoid(self, s: SideLike, acked: int, now_ns: float) -> None:
        raise NotImplementedError

    def ssthresh(self, s: SideLike) -> int:
        raise NotImplementedError

    def on_loss_state(self, s: SideLike, now_ns: float) -> None:
        """set_state(TCP_CA_Loss): an RTO expired."""

    def on_tx_start(self, s: SideLike, idle_ns: float, now_ns: float) -> None:
        """cwnd_event(CA_EVENT_TX_START): data leaves with nothing in flight."""


class Reno(CongestionControl):
    """tcp_reno_cong_avoid and tcp_reno_ssthresh (net/ipv4/tcp_cong.c)."""

    def cong_avoid(self, s: SideLike, acked: int, now_ns: float) -> None:
        if not is_cwnd_limited(s) or acked <= 0:
            return
        if s.cwnd < s.ssthresh:                     # tcp_in_slow_start
            acked = slow_start(s, acked)
            if acked <= 0:
                return
        cong_avoid_ai(s, int(s.cwnd), acked)

    def ssthresh(self, s: SideLike) -> int:
        return max(int(s.cwnd) >> 1, 2)


class Cubic(CongestionControl):
    """net/ipv4/tcp_cubic.c with its default module parameters (fast_convergence 1, beta 717,
    bic_scale 41, tcp_friendliness 1, initial_ssthresh 0, hystart 1 with both detections,
    hystart_low_window 16, hystart_ack_delta_us 2000).  Times are ns of the model's clock; the
    cubic function works in seconds.  State names follow struct bictcp; ``epoch_start`` None is
    the kernel's 0 (no epoch)."""

    def __init__(self, hystart: bool = True, gso_max_bytes: int = GSO_LEGACY_MAX_BYTES) -> None:
        self.hystart = hystart
        self.gso_max_bytes = gso_max_bytes       # sk_gso_max_size (the flow's gso_max_bytes)
        self.found = False
        self.round_start_ns = 0.0
        self.end_seq = 0
        self.last_ack_ns = 0.0
        self.curr_rtt_ns = math.inf
        self.sample_cnt = 0
        self.exits: list[tuple[str, float]] = []
        self._reset()

    def _reset(self) -> None:
        """bictcp_reset: everything but HyStart's round."""
        self.cnt = 0
        self.last_max_cwnd = 0
        self.last_cwnd = 0
        self.last_time_ns = -math.inf
        self.origin = 0                 # bic_origin_point, segments
        self.k_s = 0.0                  # bic_K, seconds
        self.delay_min_ns = 0.0
        self.epoch_start_ns: Optional[float] = None
        self.ack_cnt = 0
        self.tcp_cwnd = 0               # Reno's window, estimated (tcp_friendliness)
        self.found = False

    def _hystart_reset(self, s: SideLike, now_ns: float) -> None:
        """bictcp_hystart_reset: a new round from snd_nxt."""
        self.round_start_ns = self.last_ack_ns = now_ns
        self.end_seq = s.snd_nxt
        self.curr_rtt_ns = math.inf
        self.sample_cnt = 0

    # -- growth -----------------------------------------------------------------------------
    def cong_avoid(self, s: SideLike, acked: int, now_ns: float) -> None:
        """cubictcp_cong_avoid."""
        if not is_cwnd_limited(s) or acked <= 0:
            return
        if s.cwnd < s.ssthresh:
            acked = slow_start(s, acked)
            if acked <= 0:
                return
        self.update(int(s.cwnd), acked, now_ns)
        cong_avoid_ai(s, self.cnt, acked)

    def target(self, t_s: float) -> int:
        """The cubic function of the current epoch at `t_s` seconds (bictcp_update's
        bic_target): origin -/+ floor(C |t - K|^3), segments."""
        delta = int(CUBIC_C_PER_S3 * abs(t_s - self.k_s) ** 3)
        return self.origin - delta if t_s < self.k_s else self.origin + delta

    def update(self, cwnd: int, acked: int, now_ns: float) -> None:
        """bictcp_update: set ``cnt``, the segments acked per cwnd + 1."""
        self.ack_cnt += acked
        if self.last_cwnd == cwnd and now_ns - self.last_time_ns <= CNT_RECALC_NS:
            return
        self.last_cwnd = cwnd
        self.last_time_ns = now_ns
        if self.epoch_start_ns is None:
            self.epoch_start_ns = now_ns
            self.ack_cnt = acked
            self.tcp_cwnd = cwnd
            if self.last_max_cwnd <= cwnd:
                self.k_s = 0.0
                self.origin = cwnd
            else:
                self.k_s = ((self.last_max_cwnd - cwnd) / CUBIC_C_PER_S3) ** (1 / 3)
                self.origin = self.last_max_cwnd
        t_s = (now_ns - self.epoch_start_ns + self.delay_min_ns) / 1e9
        target = self.target(t_s)
        cnt = cwnd // (target - cwnd) if target > cwnd else 100 * cwnd
        if self.last_max_cwnd == 0 and cnt > 20:
            cnt = 20                                # no loss yet: at least 5 % per RTT
        step = (cwnd * FRIENDLY_SCALE) >> 3         # tcp_friendliness
        while self.ack_cnt > step:
            self.ack_cnt -= step
            self.tcp_cwnd += 1
        if self.tcp_cwnd > cwnd:
            cnt = min(cnt, cwnd // (self.tcp_cwnd - cwnd))
        self.cnt = max(cnt, 2)                      # at most 1 segment per 2 acked

    # -- loss, idle -------------------------------------------------------------------------
    def ssthresh(self, s: SideLike) -> int:
        """cubictcp_recalc_ssthresh: end the epoch, remember W_max (fast convergence)."""
        cwnd = int(s.cwnd)
        self.epoch_start_ns = None
        if cwnd < self.last_max_cwnd:
            self.last_max_cwnd = cwnd * (BICTCP_BETA_SCALE + BETA) // (2 * BICTCP_BETA_SCALE)
        else:
            self.last_max_cwnd = cwnd
        return max(cwnd * BETA // BICTCP_BETA_SCALE, 2)

    def on_loss_state(self, s: SideLike, now_ns: float) -> None:
        """cubictcp_state(TCP_CA_Loss): forget everything, W_max and delay_min included."""
        self._reset()
        self._hystart_reset(s, now_ns)

    def on_tx_start(self, s: SideLike, idle_ns: float, now_ns: float) -> None:
        """cubictcp_cwnd_event(CA_EVENT_TX_START): shift the epoch by the idle time."""
        if self.epoch_start_ns is not None and idle_ns > 0:
            self.epoch_start_ns = min(self.epoch_start_ns + idle_ns, now_ns)

    # -- delay, HyStart ---------------------------------------------------------------------
    def on_acked(self, s: SideLike, rtt_ns: Optional[float], now_ns: float) -> None:
        """cubictcp_acked: track delay_min, run HyStart in slow start."""
        if rtt_ns is None:
            return
        if self.epoch_start_ns is not None and now_ns - self.epoch_start_ns < DELAY_HOLDOFF_NS:
            return
        delay = max(rtt_ns, 1e3)                    # 0 us counts as 1
        if self.delay_min_ns == 0 or self.delay_min_ns > delay:
            self.delay_min_ns = delay
        if not self.found and s.cwnd < s.ssthresh and self.hystart:
            self._hystart_update(s, delay, now_ns)

    def _hystart_update(self, s: SideLike, delay_ns: float, now_ns: float) -> None:
        """hystart_update: leave slow start (ssthresh = cwnd) when a round's ACK train spans
        more than half delay_min (+ the GSO cushion), or its least RTT rises above delay_min
        by clamp(delay_min / 8, 4 ms, 16 ms)."""
        if s.snd_una > self.end_seq:
            self._hystart_reset(s, now_ns)
        if s.cwnd < HYSTART_LOW_WINDOW:
            return
        if now_ns - self.last_ack_ns <= HYSTART_ACK_DELTA_NS:     # ACK train
            self.last_ack_ns = now_ns
            threshold = (self.delay_min_ns + self.ack_delay_ns(s)) / 2     # SK_PACING_NONE
            if now_ns - self.round_start_ns > threshold:
                self._found(s, "train")
        if self.curr_rtt_ns > delay_ns:                             # delay increase
            self.curr_rtt_ns = delay_ns
        if self.sample_cnt < HYSTART_MIN_SAMPLES:
            self.sample_cnt += 1
        elif self.curr_rtt_ns > self.delay_min_ns + min(max(self.delay_min_ns / 8, HYSTART_DELAY_MIN_NS),
                                                        HYSTART_DELAY_MAX_NS):
            self._found(s, "delay")

    def _found(self, s: SideLike, how: str) -> None:
        """HyStart's exit: ssthresh = cwnd; `exits` keeps (detection, cwnd) as Linux's
        TCPHystart{Train,Delay}Detect / ...Cwnd counters do."""
        self.found = True
        s.ssthresh = s.cwnd
        self.exits.append((how, s.cwnd))

    def ack_delay_ns(self, s: SideLike) -> float:
        """hystart_ack_delay: min(1 ms, 4 sk_gso_max_size / sk_pacing_rate); 0 before an RTT
        sample (no rate)."""
        if s.srtt <= 0:
            return 0.0
        return min(HYSTART_ACK_DELAY_CAP_NS, 4 * self.gso_max_bytes / pacing_rate_bytes_per_ns(s))


def pacing_rate_bytes_per_ns(s: SideLike) -> float:
    """sk_pacing_rate as tcp_update_pacing_rate sets it: mss x max(cwnd, packets out) / srtt,
    x 200 % (tcp_pacing_ss_ratio) in slow start below ssthresh / 2, else x 120 %
    (tcp_pacing_ca_ratio).  Needs an RTT sample (srtt > 0)."""
    ratio = PACING_SS_RATIO if s.cwnd < s.ssthresh / 2 else PACING_CA_RATIO
    return s.mss * ratio * max(s.cwnd, len(s.out)) / s.srtt


def make_cc(tcp_spec) -> CongestionControl:
    """The controller a `TcpSpec` names (``congestion``, ``hystart``)."""
    if tcp_spec.congestion == "reno":
        return Reno()
    # sk_gso_max_size: the GSO limit of the route's device (gso_max_bytes; above 64 KiB, BIG
    # TCP); with gso: false the model keeps the legacy 64 KiB, as before the limit was a setting
    gso_max = tcp_spec.gso_max_bytes if tcp_spec.gso else GSO_LEGACY_MAX_BYTES
    return Cubic(hystart=tcp_spec.hystart, gso_max_bytes=gso_max)

"""Unit conversions, in one place.

Simulated time is a float number of nanoseconds everywhere in `sim/` (names end in `_ns`).
Sizes are bytes (`_bytes`), link rates bits per second (`_bps`), packet rates packets per
second (`_pps`).
"""

NS_PER_S = 1e9
BITS_PER_BYTE = 8


def serialization_ns(size_bytes: float, rate_bps: float) -> float:
    """Time to clock `size_bytes` onto a link of `rate_bps`, in ns."""
    return size_bytes * BITS_PER_BYTE * NS_PER_S / rate_bps


def pps_from_load(load: float, size_bytes: float, rate_bps: float) -> float:
    """Packet rate that offers `load` (0..1) of a `rate_bps` link with `size_bytes` packets."""
    return load * rate_bps / (size_bytes * BITS_PER_BYTE)

"""One colour, marker and line style per scheme, the same in every figure; scheme order.

Order (`order(names)`): the built-in schemes in the order of ``sim/data/schemes.yaml``
(``host``, the baseline, first; then the compiled-in, layer-2, short-cut, layer-2.5,
layer-3 and VNIC schemes; then issue 15's modern ones: veth with tc BPF, netkit, ipvlan, macvlan,
SR-IOV), then any scheme defined in a scenario, sorted by name.
Colours: the first ten built-ins take the ten Tableau colours in that order (so ``l2-routed`` is
the same red in every report); the modern built-ins and other schemes take the remaining tab20
shades (built-ins by their place in the order, others by name).
Markers and dash patterns also differ per scheme, so figures stay readable in grey print.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

BUILTIN_ORDER = ("host", "host-ns-compiled", "l2-routed", "l2-bridged", "shortcut-routing",
                 "shortcut-postrouting", "shortcut-socket", "l25-hybrid", "l3-bind", "vnic",
                 "veth-bpf-peer", "netkit", "ipvlan-l2", "ipvlan-l3", "ipvlan-l3s", "macvlan-bridge",
                 "macvlan-vepa", "sriov-vf")
_TAB10 = ("#4c4c4c", "#1f77b4", "#d62728", "#ff7f0e", "#2ca02c", "#17becf", "#9467bd",
          "#8c564b", "#bcbd22", "#e377c2")
_EXTRA = ("#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#dbdb8d",
          "#9edae5", "#7f7f7f")
_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">", "h", "p")
_DASHES = ("-", "--", "-.", ":")


@lru_cache(maxsize=None)
def _builtin_order() -> tuple[str, ...]:
    try:
        from sim.core.schemes import builtin_registry
        names = tuple(builtin_registry().names())
    except Exception:                       # the registry file is data; fall back to the known list
        names = BUILTIN_ORDER
    return tuple(n for n in BUILTIN_ORDER if n in names) + tuple(n for n in names if n not in BUILTIN_ORDER)


def order(names) -> list[str]:
    names = set(n for n in names if isinstance(n, str) and n)
    b = _builtin_order()
    return [n for n in b if n in names] + sorted(n for n in names if n not in b)


def _index(name: str) -> tuple[bool, int]:
    b = _builtin_order()
    if name in b:
        return True, b.index(name)
    return False, sum(ord(c) for c in name)


def color(name: str) -> str:
    builtin, i = _index(name)
    if builtin and i < len(_TAB10):
        return _TAB10[i]
    return _EXTRA[i % len(_EXTRA)]


def marker(name: str) -> str:
    return _MARKERS[_index(name)[1] % len(_MARKERS)]


def dash(name: str) -> str:
    return _DASHES[_index(name)[1] % len(_DASHES)]


def line_kw(name: str) -> dict:
    return {"color": color(name), "marker": marker(name), "linestyle": dash(name), "label": name,
            "markersize": 5, "linewidth": 1.6}


RC: dict[RcKeyType, Any] = {
    "figure.dpi": 110, "savefig.dpi": 130, "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9,
    "legend.fontsize": 8, "axes.grid": True, "grid.alpha": 0.3, "svg.fonttype": "none",
    "axes.spines.top": False, "axes.spines.right": False}

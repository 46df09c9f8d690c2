"""Namespace codes: how the model and its records name the end of a trip on a host.

``0..N-1`` is a container's namespace; `WIRE_NS` is the outside world behind the host's NIC
(``HOST:wire``); `ROOT_NS` is the host's initial (root) namespace (``HOST:root``): the host's
own applications, which own the NIC in every scheme.  The packet records' ``src_netns`` and
``dst_netns`` columns use the same codes.
"""

WIRE_NS = -1
ROOT_NS = -2

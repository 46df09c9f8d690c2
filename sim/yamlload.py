"""`safe_load(text)`: PyYAML's ``safe_load`` with libyaml's C parser when PyYAML has it.

The same loader classes build the data (``SafeConstructor``, the default resolver), so the
result is ``yaml.safe_load``'s; only the scanning and parsing run in C, about ten times
faster (sim/data/schemes.yaml, a cost profile: tens of ms each in pure Python).  Without
libyaml it is ``yaml.safe_load`` itself.
"""

from __future__ import annotations

from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def safe_load(text: str) -> Any:
    """The data of the YAML document `text`, as ``yaml.safe_load(text)`` gives it."""
    return yaml.load(text, Loader=_LOADER)

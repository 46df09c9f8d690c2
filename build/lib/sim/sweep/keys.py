"""Content keys: a point is identified by a hash of everything that determines its result.

The key is the SHA-256 (first 20 hex digits) of the canonical JSON of the point's resolved
scenario (every default filled in, ``extends:``/``--set``/topology applied, ``run.seed``
and ``run.replication`` set; ``name`` and ``description`` left out as they do not change
the run) and its resolved cost profile (so editing a profile's value re-runs the points that
use it).  The simulator's code is not part of the key: after changing the model, write the
sweep to a new ``--out`` directory.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

KEY_VERSION = 1          # bump if the record format of a point changes
NOT_IN_KEY = ("name", "description")
PROFILE_NOT_IN_KEY = ("description", "source_file")    # source_file is a machine-local path


def canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def point_key(material: Any) -> str:
    return hashlib.sha256(canonical({"v": KEY_VERSION, **material}).encode()).hexdigest()[:20]


def resolved_config(variant, replication: int) -> tuple[dict, dict]:
    """(scenario as JSON-able dict with run.replication set, cost profile as JSON-able dict)."""
    cfg = variant.scenario.model_dump(mode="json")
    cfg["run"]["replication"] = int(replication)
    for k in NOT_IN_KEY:
        cfg.pop(k, None)
    return cfg, variant.profile.model_dump(mode="json")


def key_material(config: dict, profile: dict) -> dict:
    return {"config": config, "profile": {k: v for k, v in profile.items() if k not in PROFILE_NOT_IN_KEY}}

"""Key paths into a scenario document: ``flows.0.rate_pps``, ``hosts.*.scheme``.

A key path is dot-separated; a part made of digits indexes a list (0-based); ``*`` means
every element of that list (or every value of that mapping).  Paths are tuples of str/int
inside the code and print as ``flows[0].rate_pps`` in messages.  Used by ``--set`` and by
``compare:``; no other module knows the syntax.
"""

from __future__ import annotations

from typing import Any

STAR = "*"


class KeyPathError(ValueError):
    """A key path does not fit the document; `at` is the prefix that was reached."""

    def __init__(self, message: str, at: tuple = ()) -> None:
        super().__init__(message)
        self.at = at


def parse(text: str) -> tuple:
    """``'hosts.0.scheme'`` -> ``('hosts', 0, 'scheme')``; empty parts are an error."""
    parts = text.strip().split(".")
    if not text.strip() or any(p == "" for p in parts):
        raise KeyPathError(f"{text!r} is not a key path; write parts separated by dots, e.g. run.duration_ns")
    return tuple(int(p) if p.isdigit() else p for p in parts)


def fmt(path: tuple) -> str:
    """``('flows', 0, 'rate_pps')`` -> ``'flows[0].rate_pps'``."""
    out = ""
    for p in path:
        if isinstance(p, int) or p == STAR:
            out += f"[{p}]"
        else:
            out += ("." if out else "") + str(p)
    return out or "<top level>"


def assign(doc: Any, path: tuple, value: Any, create: bool = True) -> list[tuple]:
    """Set `value` at `path` in `doc` (in place); ``*`` fans out.  Returns the concrete
    paths written.  Missing mapping keys are created when `create`; a list index out of
    range, an index into a mapping or a key into a scalar is a `KeyPathError`."""
    written: list[tuple] = []

    def walk(node: Any, i: int, done: tuple) -> None:
        part = path[i]
        last = i == len(path) - 1
        if part == STAR:
            if isinstance(node, list):
                keys = list(range(len(node)))
            elif isinstance(node, dict):
                keys = list(node)
            else:
                raise KeyPathError(f"{fmt(done)} is not a list, so '*' cannot select its elements", done)
            if not keys:
                raise KeyPathError(f"{fmt(done)} is empty, so '*' selects nothing", done)
            for k in keys:
                step(node, k, i, last, done)
            return
        step(node, part, i, last, done)

    def step(node: Any, key: Any, i: int, last: bool, done: tuple) -> None:
        here = done + (key,)
        if isinstance(node, list):
            if not isinstance(key, int):
                raise KeyPathError(f"{fmt(done)} is a list: index it with a number, not {key!r}", done)
            if key >= len(node):
                raise KeyPathError(f"{fmt(done)} has {len(node)} element(s), numbered from 0; "
                                   f"there is no [{key}]", done)
        elif isinstance(node, dict):
            if isinstance(key, int) and key not in node and str(key) not in node:
                raise KeyPathError(f"{fmt(done)} is a mapping, not a list: there is no [{key}]", done)
            if isinstance(key, int) and key not in node:
                key = str(key)
            if key not in node:
                if not create:
                    raise KeyPathError(f"{fmt(here)} does not exist", done)
                if not last:
                    node[key] = {}
        else:
            raise KeyPathError(f"{fmt(done)} is a value ({node!r}), not a mapping or list", done)
        if last:
            node[key] = value
            written.append(here)
        else:
            walk(node[key], i + 1, here)

    if not path:
        raise KeyPathError("empty key path")
    walk(doc, 0, ())
    return written

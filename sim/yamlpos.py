"""Where each key of a YAML file is: key path -> (file, line), for error messages.

`read(path)` parses a file once with PyYAML's composer (which keeps node marks) and returns
the plain data and a `Positions` map.  Lines are 1-based.  Lookups fall back to the longest
known prefix, so an error about a missing key points at its parent mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml


@dataclass(frozen=True)
class Where:
    file: str                 # file name as the user gave it, or "--set ..." for the command line
    line: Optional[int]       # 1-based, None when not from a file

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class YamlSyntaxError(ValueError):
    def __init__(self, where: Where, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message


class Positions(dict):
    """tuple key path -> `Where`."""

    def lookup(self, path: tuple) -> Optional[Where]:
        path = tuple(path)
        for n in range(len(path), -1, -1):
            w = self.get(path[:n])
            if w is not None:
                return w
        return None

    def drop_under(self, prefix: tuple) -> None:
        """Forget every position at or below `prefix` (the value there was replaced)."""
        n = len(prefix)
        for k in [k for k in self if k[:n] == prefix]:
            del self[k]


def _walk(node: yaml.Node, path: tuple, file: str, out: Positions) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = yaml.constructor.SafeConstructor().construct_object(key_node, deep=True)
            here = path + (key,)
            out[here] = Where(file, key_node.start_mark.line + 1)
            _walk(value_node, here, file, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = path + (i,)
            out[here] = Where(file, item.start_mark.line + 1)
            _walk(item, here, file, out)


def read(path: str | Path, display: str | None = None) -> tuple[Any, Positions]:
    """Parse the YAML file at `path`; `display` is the name used in messages."""
    display = display or str(path)
    text = Path(path).read_text()
    try:
        data = yaml.safe_load(text)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
        raise YamlSyntaxError(Where(display, line), f"malformed YAML: {problem}") from None
    except yaml.YAMLError as e:
        raise YamlSyntaxError(Where(display, None), f"malformed YAML: {e}") from None
    pos = Positions()
    pos[()] = Where(display, 1)
    if node is not None:
        _walk(node, (), display, pos)
    return data, pos

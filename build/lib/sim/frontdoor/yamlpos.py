"""Where each key of a YAML file is: key path -> (file, line), for error messages.

`read(path)` parses a file once with `Yaml12Loader` (PyYAML's composer keeps node marks) and
returns the plain data and a `Positions` map.  Lines are 1-based.  Lookups fall back to the
longest known prefix, so an error about a missing key points at its parent mapping.

Input that cannot hurt: scalars follow the YAML 1.2 core schema (``1.0e7`` and ``1e3`` are
numbers, ``yes``/``on`` and ``2024-01-01`` are strings, ``0o17`` is octal and ``017`` is 17);
a file must be UTF-8 text without NUL bytes and at most `MAX_FILE_BYTES`; nesting is bounded
by `MAX_DEPTH`, the document after alias expansion by `MAX_NODES` (an alias bomb is refused
before anything is built from it) and a key may appear only once in a mapping.  Every
problem is a `YamlSyntaxError` naming file, line, key path and a fix.  `parse_value` applies
the same rules to a ``--set`` value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import yaml

MAX_FILE_BYTES = 8 * 2**20     # a scenario is a few KiB; anything this large is not one
MAX_DEPTH = 64                 # nesting levels of mappings/lists (a scenario needs about 8)
MAX_NODES = 200_000            # values after alias expansion (the largest scenario has ~1,000)


@dataclass(frozen=True)
class Where:
    file: str                 # file name as the user gave it, or "--set ..." for the command line
    line: Optional[int]       # 1-based, None when not from a file

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


class YamlSyntaxError(ValueError):
    """Unreadable YAML.  `path` is the key path concerned (``()`` when none), `fix` a hint,
    `more` further problems of the same file (all duplicate keys are reported at once)."""

    def __init__(self, where: Where, message: str, path: tuple = (), fix: str = "",
                 more: Optional[list["YamlSyntaxError"]] = None) -> None:
        super().__init__(f"{where}: {message}")
        self.where = where
        self.message = message
        self.path = path
        self.fix = fix
        self.more = more or []


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


# -- the loader: YAML 1.2 core schema, bounded nesting ------------------------------------

_RESOLVED_HERE = {"tag:yaml.org,2002:bool", "tag:yaml.org,2002:int", "tag:yaml.org,2002:float",
                  "tag:yaml.org,2002:null", "tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
                    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$")


class Yaml12Loader(yaml.SafeLoader):
    """`yaml.SafeLoader` with the YAML 1.2 core schema for null, bool, int and float, and a
    nesting bound checked while composing (so a deep document never reaches recursion)."""

    yaml_implicit_resolvers = {first: [(tag, rx) for tag, rx in rs if tag not in _RESOLVED_HERE]
                               for first, rs in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node) -> int:
        value = self.construct_scalar(node)
        sign = -1 if value[0] == "-" else 1
        digits = value.lstrip("+-")
        if digits.startswith("0o"):
            return int(digits[2:], 8)
        if digits.startswith("0x"):
            return int(digits[2:], 16)
        return sign * int(digits, 10)

    def construct_yaml_float(self, node) -> float:
        value = self.construct_scalar(node).lower()
        return float(value.replace(".inf", "inf").replace(".nan", "nan"))


Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:null", re.compile(r"^(?:~|null|Null|NULL|)$"),
                                   ["~", "n", "N", ""])
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:bool",
                                   re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:int", _INT, list("-+0123456789"))
Yaml12Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
Yaml12Loader.add_constructor("tag:yaml.org,2002:int", Yaml12Loader.construct_yaml_int)
Yaml12Loader.add_constructor("tag:yaml.org,2002:float", Yaml12Loader.construct_yaml_float)


# -- checks on the composed node graph ----------------------------------------------------

def _expanded_size(root: yaml.Node, where) -> int:
    """Number of nodes once aliases are expanded (memoised per node, so an alias bomb costs
    its distinct nodes only); a node that contains an alias to itself is an error."""
    size: dict[int, int] = {}
    active: set[int] = set()

    def visit(node: yaml.Node) -> int:
        k = id(node)
        if k in size:
            return size[k]
        if k in active:
            raise YamlSyntaxError(where(node), "an alias refers to a node that contains it (a recursive "
                                  "structure)", fix="write the values out instead of the recursive alias")
        active.add(k)
        children = ([c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode)
                    else node.value if isinstance(node, yaml.SequenceNode) else [])
        n = 1 + sum(visit(c) for c in children)
        active.discard(k)
        size[k] = n
        return n

    return visit(root)


def _walk(loader: Yaml12Loader, root: yaml.Node, file: str, out: Positions) -> list[YamlSyntaxError]:
    """Fill `out` with the position of every key path; returns the duplicate-key problems."""
    dups: list[YamlSyntaxError] = []
    checked: set[int] = set()

    def walk(node: yaml.Node, path: tuple) -> None:
        if isinstance(node, yaml.MappingNode):
            first: dict = {}
            for key_node, value_node in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    walk(value_node, path)
                    continue
                key = loader.construct_object(key_node, deep=True) if isinstance(key_node, yaml.ScalarNode) \
                    else key_node.start_mark.line
                here = path + (key,)
                line = key_node.start_mark.line + 1
                if key in first and id(node) not in checked:
                    dups.append(YamlSyntaxError(
                        Where(file, line), f"key {key!r} appears twice in one mapping: lines {first[key]} and {line}",
                        here, "keep one of them (YAML would silently use the last)"))
                first.setdefault(key, line)
                out.setdefault(here, Where(file, line))
                walk(value_node, here)
            checked.add(id(node))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                here = path + (i,)
                out[here] = Where(file, item.start_mark.line + 1)
                walk(item, here)

    walk(root, ())
    return dups


# -- reading ------------------------------------------------------------------------------

def _text(raw: bytes, display: str) -> str:
    """`raw` as text, or a `YamlSyntaxError` for a binary or non-UTF-8 file."""
    if len(raw) > MAX_FILE_BYTES:
        raise YamlSyntaxError(Where(display, None), f"file is {len(raw)} bytes; a scenario is at most "
                              f"{MAX_FILE_BYTES} bytes", fix="give a scenario file (YAML text)")
    nul = raw.find(b"\0")
    if nul >= 0:
        raise YamlSyntaxError(Where(display, raw.count(b"\n", 0, nul) + 1), "binary file (NUL byte); a "
                              "scenario is YAML text", fix="give a scenario file (UTF-8 YAML text)")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise YamlSyntaxError(Where(display, raw.count(b"\n", 0, e.start) + 1),
                              f"not UTF-8 text (byte 0x{raw[e.start]:02x} at offset {e.start})",
                              fix="save the file as UTF-8") from None


def _syntax_error(e: yaml.YAMLError, display: str, text: str) -> YamlSyntaxError:
    if isinstance(e, yaml.MarkedYAMLError):
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else None
        problem = " ".join(str(x) for x in (e.context, e.problem) if x)
    else:
        pos = getattr(e, "position", None)
        line = text.count("\n", 0, pos) + 1 if isinstance(pos, int) else None
        problem = str(getattr(e, "reason", "") or e).splitlines()[0]
    return YamlSyntaxError(Where(display, line), f"malformed YAML: {problem}",
                           fix="check indentation, colons and brackets on that line or the one before")


def parse(text: str, display: str) -> tuple[Any, Positions]:
    """Parse YAML `text` (named `display` in messages) under the rules of the module doc."""
    loader = None
    try:
        try:
            loader = Yaml12Loader(text)
            node = loader.get_single_node()
            pos = Positions()
            pos[()] = Where(display, 1)
            if node is None:
                return None, pos

            def where(n: yaml.Node) -> Where:
                return Where(display, n.start_mark.line + 1)
            n = _expanded_size(node, where)
            if n > MAX_NODES:
                raise YamlSyntaxError(where(node), f"the document has {n:.3g} values once its aliases (*name) "
                                      f"are expanded; at most {MAX_NODES} are read",
                                      fix="use fewer aliases or a smaller file")
            dups = _walk(loader, node, display, pos)
            if dups:
                dups[0].more = dups[1:]
                raise dups[0]
            return loader.construct_document(node), pos
        except yaml.YAMLError as e:
            raise _syntax_error(e, display, text) from None
        except RecursionError:
            raise YamlSyntaxError(Where(display, None), "the document nests too deeply to be read",
                                  fix=f"nest at most {MAX_DEPTH} levels") from None
    finally:
        if loader is not None:
            loader.dispose()


def parse_value(text: str, display: str) -> Any:
    """One value written on the command line (``--set key=VALUE``), same rules as a file."""
    return parse(text, display)[0]


def read(path: str | Path, display: str | None = None) -> tuple[Any, Positions]:
    """Parse the YAML file at `path`; `display` is the name used in messages."""
    display = display or str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as e:
        raise YamlSyntaxError(Where(display, None), f"cannot read the file: {e.strerror or e}",
                              fix="give a readable scenario file") from None
    return parse(_text(raw, display), display)

"""YAML to plain values, remembering where each value and each key was written.

PyYAML's composer gives nodes with their start marks; this module walks them into dicts,
lists and scalars (scalars built by PyYAML's safe constructor, so ``600`` is an int and
``true`` a bool) and records a 1-based ``(line, column)`` for every path. Mapping keys stay the
text that was written (``on:`` is the key ``"on"``, not ``True``). Merge keys (``<<``) and
aliases work; an alias that expands past :data:`MAX_NODES` values, a recursive alias, a
duplicate key or YAML that does not parse becomes a :class:`SourceError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

_COLLECTION_TAGS: Final = ("tag:yaml.org,2002:seq", "tag:yaml.org,2002:map")
MAX_NODES: Final = 100_000  # values after alias expansion ("billion laughs")

PathKey = str | int
Path = tuple[PathKey, ...]
Position = tuple[int, int]  # 1-based line, column


@dataclass(frozen=True)
class SourceError:
    line: int
    column: int
    path: Path
    message: str
    replaced: bool = False  # the value at ``path`` could not be read and stands as None


@dataclass
class Document:
    """The values of one YAML document; ``values`` is None for an empty one."""

    values: Any
    positions: dict[Path, Position] = field(default_factory=dict)  # where each value starts
    key_positions: dict[Path, Position] = field(default_factory=dict)  # where its key is
    errors: list[SourceError] = field(default_factory=list)

    def position(self, path: Path, *, key: bool = False) -> Position:
        """Where ``path`` was written (its key's place when ``key``); the nearest enclosing
        value's place for a path the document does not have; line 1 for an empty document."""
        if key and path in self.key_positions:
            return self.key_positions[path]
        while path not in self.positions and path:
            path = path[:-1]
        return self.positions.get(path, (1, 1))


class _TooLargeError(Exception):
    pass


def compose(text: str) -> Document:
    """``text`` as values with positions. Syntax errors leave ``values`` None and one error."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        return _syntax_error(error)
    except yaml.reader.ReaderError as error:
        line, column = _line_column(text, error.position)
        return Document(
            None,
            errors=[_error(line, column, f"bad YAML at {_at(line, column)}: {_reader(error)}")],
        )
    except RecursionError:
        return Document(None, errors=[_error(1, 1, "bad YAML: nested too deeply")])
    if node is None:
        return Document(None)
    walker = _Walker()
    document = Document(None)
    try:
        document.values = walker.walk(node, (), document)
    except _TooLargeError:
        document.values = None
        document.errors = [
            _error(1, 1, f"the document expands to more than {MAX_NODES} values (aliases)")
        ]
    except RecursionError:
        document.values = None
        document.errors = [_error(1, 1, "bad YAML: nested too deeply")]
    return document


class _Walker:
    def __init__(self) -> None:
        self.constructor = SafeConstructor()
        self.count = 0
        self.seen: set[int] = set()
        self.active: set[int] = set()  # the nodes on the current path: a recursive alias

    def walk(self, node: Node, path: Path, document: Document) -> Any:
        self.count += 1
        if self.count > MAX_NODES:
            raise _TooLargeError
        if id(node) in self.seen and path in document.key_positions:
            # An alias: its own place is lost in composing; its key is the nearest.
            document.positions.setdefault(path, document.key_positions[path])
        document.positions.setdefault(path, _mark(node))
        self.seen.add(id(node))
        if id(node) in self.active:
            document.errors.append(_at_node(node, path, "a recursive alias", replaced=True))
            return None
        if isinstance(node, ScalarNode):
            return self._scalar(node, path, document)
        if node.tag not in _COLLECTION_TAGS:
            message = f"the YAML tag {node.tag!r} is not supported"
            document.errors.append(_at_node(node, path, message, replaced=True))
            return None
        self.active.add(id(node))
        try:
            if isinstance(node, SequenceNode):
                return [self.walk(item, (*path, i), document) for i, item in enumerate(node.value)]
            if isinstance(node, MappingNode):
                return self._mapping(node, path, document)
        finally:
            self.active.discard(id(node))
        return None  # pragma: no cover - the composer makes only these three kinds

    def _scalar(self, node: ScalarNode, path: Path, document: Document) -> Any:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.MarkedYAMLError as error:
            document.errors.append(_at_node(node, path, _problem(error), replaced=True))
            return None
        except (ValueError, TypeError, OverflowError) as error:  # !!int abc, 2024-13-45
            document.errors.append(_at_node(node, path, f"bad YAML value: {error}", replaced=True))
            return None
        if isinstance(value, str) and _has_surrogate(value):
            document.errors.append(
                _at_node(node, path, "a string that is not valid Unicode", replaced=True)
            )
            return None
        return value

    def _mapping(self, node: MappingNode, path: Path, document: Document) -> dict[str, Any]:
        try:
            self.constructor.flatten_mapping(node)  # merge keys (<<) into the mapping
        except yaml.MarkedYAMLError as error:
            document.errors.append(_at_node(node, path, _problem(error), replaced=True))
            return {}
        values: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                document.errors.append(_at_node(key_node, path, "a key must be a plain string"))
                continue
            key = str(key_node.value)
            child = (*path, key)
            if key in values:
                document.errors.append(_at_node(key_node, path, f"duplicate key {key!r}"))
                continue
            document.key_positions[child] = _mark(key_node)
            values[key] = self.walk(value_node, child, document)
        return values


def _mark(node: Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _at_node(node: Node, path: Path, message: str, *, replaced: bool = False) -> SourceError:
    line, column = _mark(node)
    return SourceError(line, column, path, message, replaced)


def _error(line: int, column: int, message: str) -> SourceError:
    return SourceError(line, column, (), message)


def _at(line: int, column: int) -> str:
    return f"line {line} column {column}"


def _syntax_error(error: yaml.MarkedYAMLError) -> Document:
    mark = error.problem_mark or error.context_mark
    line, column = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    return Document(
        None, errors=[_error(line, column, f"bad YAML at {_at(line, column)}: {_problem(error)}")]
    )


def _problem(error: yaml.MarkedYAMLError) -> str:
    problem = error.problem or "cannot be read"
    if error.context:
        return f"{problem} ({error.context})"
    return problem


def _reader(error: yaml.reader.ReaderError) -> str:
    if error.encoding == "unicode" or isinstance(error.character, str):
        code = error.character if isinstance(error.character, int) else ord(error.character)
        return f"the character U+{code:04X} is not allowed"
    return f"the byte {error.character:#x} cannot be read as {error.encoding}"


def _line_column(text: str, offset: int) -> Position:
    before = text[:offset]
    return before.count("\n") + 1, offset - (before.rfind("\n") + 1) + 1


def _has_surrogate(value: str) -> bool:
    return any(0xD800 <= ord(c) <= 0xDFFF for c in value)

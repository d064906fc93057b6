"""YAML read with limits checked before anything is built: size, nesting depth, alias expansion.

A job file is small (the API server refuses requests over ~3 MB), so a bigger file, a document
nested deeper than any manifest needs, or an anchor tree that expands to millions of nodes (the
"billion laughs") is refused with a clear message before PyYAML constructs a single object.
Duplicate keys are refused as the API server refuses duplicate fields.
"""

from __future__ import annotations

from typing import Any

import yaml

MAX_BYTES = 3 * 1024 * 1024  # the API server's request size limit
MAX_DEPTH = 64
MAX_NODES = 100_000  # after alias expansion; a 16-GPU LIMRJob has about 400


class YAMLLimitError(ValueError):
    """The text breaks a limit or is not YAML; the message says which and where."""


class _NoDuplicates(yaml.SafeLoader):
    """SafeLoader that refuses duplicate keys (naming the line of the first one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.setdefault(key, key_node.start_mark.line + 1)
            except TypeError:
                continue
            if first != key_node.start_mark.line + 1:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {first})", key_node.start_mark
                )
        return super().construct_mapping(node, deep=deep)


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""


def _check_events(text: str) -> None:
    """Nesting depth from the event stream (iterative, so a deep document cannot overflow)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                line = event.start_mark.line + 1
                raise YAMLLimitError(f"nested deeper than {MAX_DEPTH} levels at line {line}")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _expanded_nodes(root: yaml.Node) -> int:
    """Nodes the document has once every alias is expanded (shared nodes counted per use)."""
    memo: dict[int, int] = {}

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise YAMLLimitError(f"nested deeper than {MAX_DEPTH} levels through aliases")
        total = 1
        if isinstance(node, yaml.SequenceNode):
            total += sum(size(child, depth + 1) for child in node.value)
        elif isinstance(node, yaml.MappingNode):
            total += sum(size(k, depth + 1) + size(v, depth + 1) for k, v in node.value)
        memo[key] = min(total, MAX_NODES + 1)
        return memo[key]

    return size(root, 0)


def load_documents(text: str) -> list[Any]:
    """Every non-empty document of `text`, after the limits; YAMLLimitError otherwise."""
    if len(text.encode("utf-8", errors="surrogatepass")) > MAX_BYTES:
        raise YAMLLimitError(f"larger than {MAX_BYTES // (1024 * 1024)} MiB (the API server's request limit)")
    try:
        _check_events(text)
        nodes = list(yaml.compose_all(text, Loader=yaml.SafeLoader))
        for node in nodes:
            if node is not None and _expanded_nodes(node) > MAX_NODES:
                raise YAMLLimitError(
                    f"expands to more than {MAX_NODES} nodes through anchors and aliases (a YAML bomb?)"
                )
        docs = list(yaml.load_all(text, Loader=_NoDuplicates))
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or str(exc)
        raise YAMLLimitError(f"malformed YAML{_where(exc)}: {problem}") from None
    return [d for d in docs if d is not None]

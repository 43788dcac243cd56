"""Reading recipe YAML safely: duplicate keys refused with their line, alias expansion bounded, overrides parsed.

`yaml.safe_load` keeps the last of two equal keys silently and expands aliases without limit (a
"billion laughs" recipe of a few hundred bytes becomes billions of nodes). `load_yaml` refuses both
before any value is built; `apply_override` folds one `--set key.path=value` into a loaded recipe.
"""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, SequenceNode

from .errors import RecipeError

MAX_NODES = 100_000
"""Most YAML nodes a recipe may hold once aliases are expanded (a real recipe holds a few hundred)."""


def load_yaml(text: str, origin: str) -> Any:
    """Parse `text` as YAML (safe types only), refusing duplicate keys and alias bombs.

    Raises `RecipeError` naming `origin`, the line and the fix.
    """
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise RecipeError(f"Recipe {origin} is not valid YAML: {_short(exc)}. Fix the syntax at the line shown.") from None
    if root is None:
        return None
    _check_tree(root, origin)
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    except yaml.YAMLError as exc:
        raise RecipeError(f"Recipe {origin} is not valid YAML: {_short(exc)}. Fix the value at the line shown.") from None
    finally:
        loader.dispose()


def _check_tree(root: Node, origin: str) -> None:
    """Count nodes as if aliases were expanded (memoised per node, so the count itself is cheap); find duplicates."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        children: list[Node] = []
        if isinstance(node, SequenceNode):
            children = list(node.value)
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        if not children_done:
            if isinstance(node, MappingNode):
                _check_duplicates(node, origin)
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            continue
        size = 1 + sum(sizes.get(id(c), 1) for c in children)
        if size > MAX_NODES:
            line = node.start_mark.line + 1
            raise RecipeError(
                f"Recipe {origin} expands to more than {MAX_NODES:,} YAML values (aliases `*name` repeated inside "
                f"each other, from line {line}). A recipe holds a few hundred values: write them out, or remove the "
                "nested aliases."
            )
        sizes[id(node)] = size


def _check_duplicates(node: MappingNode, origin: str) -> None:
    seen: dict[str, int] = {}
    for key, _ in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        line = key.start_mark.line + 1
        if key.value in seen and key.value != "<<":
            raise RecipeError(
                f"Recipe {origin} has key `{key.value[:80]}` twice in one section (lines {seen[key.value]} and {line}); "
                "YAML would silently keep the last. Delete one of them."
            )
        seen[key.value] = line


def apply_override(raw: dict[str, Any], override: str) -> None:
    """Fold `section.key=value` into `raw`. The value is one YAML scalar, list or mapping;
    a mapping given for a section is merged into it key by key, never replacing the section whole."""
    key, sep, value = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not key.strip() or any(not p.strip() for p in parts):
        raise RecipeError(
            f"Override `{override[:120]}` must look like `section.key=value`, e.g. `--set fields.steps=2000`."
        )
    parsed = load_yaml(value, f"override `{key.strip()}`") if value.strip() else None
    if not value.strip():
        raise RecipeError(
            f"Override `{key.strip()}=` has no value. Give one after `=`, e.g. `--set {key.strip()}=2000` "
            "(`null` for an empty setting)."
        )
    node = raw
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            where = ".".join(parts[: depth + 1])
            raise RecipeError(f"Override `{key.strip()}`: `{where}` holds a value, not a section; set `{where}=...` instead.")
        node = child
    last = parts[-1]
    if isinstance(parsed, dict) and isinstance(node.get(last), dict):
        _merge(node[last], parsed)
    else:
        node[last] = parsed


def _merge(into: dict[str, Any], new: dict[str, Any]) -> None:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _short(exc: Exception) -> str:
    """A YAML error in one line, never longer than 300 characters."""
    return " ".join(str(exc).split())[:300]

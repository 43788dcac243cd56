"""The recipe reference in Markdown, generated from the pydantic models so it cannot drift."""

from __future__ import annotations

from typing import Literal, get_args, get_origin

from pydantic import BaseModel

from .recipe import Recipe, tagged_models


def recipe_reference() -> str:
    """Every recipe key with its type, default and description, section by section."""
    lines = [
        "# Recipe reference",
        "",
        "Generated from `dpotcube/recipe.py` by `python -m dpotcube.recipe_reference > docs/recipes.md`;",
        "a test keeps this page equal to the models. Unknown keys are errors. Any key can be overridden on",
        "the command line with `--set section.key=value` (the value is read as YAML).",
        "",
    ]
    _rules(lines)
    _section(Recipe, "recipe", lines)
    return "\n".join(lines) + "\n"


def _rules(lines: list[str]) -> None:
    """What every value must be, and the size limits `validate` and `build` check before any work."""
    from dataclasses import fields

    from .preflight import ALLOW_LARGE_ENV, LIMIT_KEYS, LIMITS
    from .recipe import INT_MAX, SEED_MAX
    from .recipe_yaml import MAX_NODES

    lines += [
        "## Values and limits",
        "",
        "- Every number is finite: `.nan` and `.inf` are refused with the key named.",
        "- A number is never a boolean: YAML reads `yes`, `no`, `on`, `off`, `true`, `false` as booleans, and a",
        f"  key that wants a number refuses them. Integers lie within ±{INT_MAX:,}; seeds within 0 … {SEED_MAX:,}.",
        "- A key given twice in one section is refused with both lines; an empty recipe is refused; YAML aliases",
        f"  may expand to at most {MAX_NODES:,} values.",
        "- `--set section.key=value` reads the value as YAML; `--set section={key: value}` merges into the",
        "  section (the other keys keep their values).",
        "",
        "`dpotcube validate` runs every check `dpotcube build` makes before its first stage (grid against the",
        "tracer volume, sizes, files, catalog, output folders, scheduler options) and prints the sizes. Sizes",
        f"above these limits are refused with the memory they would take; `--allow-large` (or `{ALLOW_LARGE_ENV}=1`)",
        "lifts them on purpose:",
        "",
        "| limit | counts | set by |",
        "| ---: | --- | --- |",
        *(f"| {getattr(LIMITS, f.name):,} | {LIMIT_KEYS[f.name][0]} | {LIMIT_KEYS[f.name][1]} |" for f in fields(LIMITS)),
        "",
    ]


def _section(model: type[BaseModel], path: str, lines: list[str], tag: str | None = None) -> None:
    title = f"## `{path}`" if tag is None else f"## `{path}` with `type: {tag}`"
    lines += [title, "", (model.__doc__ or "").strip().splitlines()[0], ""]
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    children = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        sub_path = f"{path}.{name}" if path != "recipe" else name
        tagged = tagged_models(annotation)
        sub = _submodel(annotation)
        if tagged:
            children += [(sub, sub_path, tag) for tag, sub in tagged.items()]
            kind = f"section `{sub_path}`, by `type`: " + ", ".join(f"`{tag}`" for tag in tagged)
        elif sub is not None:
            children.append((sub, sub_path, None))
            kind = f"section `{sub_path}`"
        else:
            kind = _type_name(annotation)
        default = "required" if field.is_required() else _default(field)
        lines.append(f"| `{name}` | {kind} | {default} | {field.description or ''} |")
    lines.append("")
    for sub, sub_path, tag in children:
        _section(sub, sub_path, lines, tag)


def _submodel(annotation) -> type[BaseModel] | None:
    for candidate in (annotation, *getattr(annotation, "__args__", ())):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _type_name(annotation) -> str:
    if get_origin(annotation) is Literal:
        return " \\| ".join(f"`{v}`" for v in get_args(annotation))
    text = getattr(annotation, "__name__", None) or str(annotation)
    text = text.replace("typing.", "").replace("pathlib.", "")
    return f"`{text}`".replace("|", "\\|")


def _default(field) -> str:
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        return "(section)"
    return f"`{value}`".replace("|", "\\|")


if __name__ == "__main__":
    print(recipe_reference(), end="")

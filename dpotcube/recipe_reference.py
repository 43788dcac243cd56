"""The recipe reference in Markdown, generated from the pydantic models so it cannot drift."""

from __future__ import annotations

from typing import Literal, get_args, get_origin

from pydantic import BaseModel

from .recipe import Recipe


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
    _section(Recipe, "recipe", lines)
    return "\n".join(lines) + "\n"


def _section(model: type[BaseModel], path: str, lines: list[str]) -> None:
    lines += [f"## `{path}`", "", (model.__doc__ or "").strip().splitlines()[0], ""]
    lines += ["| key | type | default | meaning |", "| --- | --- | --- | --- |"]
    children = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        sub = _submodel(annotation)
        if sub is not None:
            children.append((sub, f"{path}.{name}" if path != "recipe" else name))
            kind = f"section `{children[-1][1]}`"
        else:
            kind = _type_name(annotation)
        default = "required" if field.is_required() else _default(field)
        lines.append(f"| `{name}` | {kind} | {default} | {field.description or ''} |")
    lines.append("")
    for sub, sub_path in children:
        _section(sub, sub_path, lines)


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

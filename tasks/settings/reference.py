"""Writes docs/settings.md, the settings reference, from the Settings model: each setting's
jh_ name, kind of value, default, description and example, in the model's sections, with
the keys of its structured values. Run `make docs` (python -m tasks.settings.reference)
after changing a setting; a unit test fails while the file differs from what this writes."""

import inspect
import json
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path, PurePosixPath
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from annotated_types import Ge, Le, MaxLen, MinLen
from pydantic import BaseModel, HttpUrl
from pydantic.fields import FieldInfo
from pydantic.types import PathType

from tasks.settings.constants import PREFIX, REPO
from tasks.settings.model import Settings
from tasks.settings.types import Kind

DOC = REPO / "docs" / "settings.md"
COMMAND = "make docs"
BASE_KINDS = {
    bool: "`True` or `False`",
    int: "whole number",
    float: "number",
    str: "text",
    Any: "any JSON value",
    PurePosixPath: "absolute path on the host",
    Path: "path on the controller",
    IPv4Address: "IPv4 address",
    IPv6Address: "IPv6 address",
    HttpUrl: "http(s) URL",
}
INTRO = f"""\
# Settings

<!-- Written by `{COMMAND}` (python -m tasks.settings.reference) from tasks/settings/model.py
and parts.py: change the descriptions there, not here. -->

Settings are pyinfra host or group data whose names start with `{PREFIX}`: group-wide in
`group_data/all.py`, per host in `inventory.py`. They are validated for every host before any host
is touched: an unknown `{PREFIX}` name, a wrong type or a bad value stops the run with a message that
names the setting and what it allows. Values are Python: `True`, `None`, lists and dicts; paths,
addresses and URLs are given as text. A setting left out takes its default."""


def render() -> str:
    """The reference, as docs/settings.md holds it."""
    sections: dict[str, list[str]] = {}
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        if "section" in extra:
            sections[str(extra["section"])] = []
        list(sections.values())[-1].append(name)
    lines = [INTRO, "", " · ".join(f"[{title}](#{_anchor(title)})" for title in sections)]
    shown: set[type[BaseModel]] = set()
    for title, names in sections.items():
        lines += ["", f"## {title}"]
        for name in names:
            field = Settings.model_fields[name]
            lines += ["", f"### `{PREFIX}{name}`", "", _summary(field), "", _description(field)]
            lines += [line for example in _examples(field) for line in ("", f"Example: `{_python(example)}`")]
            for model in _models(field.annotation):
                if model not in shown:
                    shown.add(model)
                    lines += _keys(model)
    return "\n".join(lines) + "\n"


def _summary(field: FieldInfo) -> str:
    return f"*{_kind(field.annotation, field.metadata)}* · default: {_default(field)}"


def _description(field: FieldInfo) -> str:
    if not field.description:
        raise ValueError(f"every setting and key needs a description: {field}")
    return field.description


def _default(field: FieldInfo) -> str:
    return "required" if field.is_required() else f"`{_python(field.default)}`"


def _examples(field: FieldInfo) -> list[Any]:
    """The setting's examples; for a structured value without any, one made of its keys' examples."""
    models = _models(field.annotation)
    if field.examples or get_origin(field.annotation) in (list, dict) or len(models) != 1:
        return field.examples or []
    composed = {name: key.examples[0] for name, key in models[0].model_fields.items() if key.examples}
    return [composed] if composed else []


def _keys(model: type[BaseModel]) -> list[str]:
    """The keys of a structured value, as a table."""
    lines = ["", f"#### {model.__name__} keys", "", " ".join(inspect.cleandoc(model.__doc__ or "").split()), ""]
    lines += ["| key | kind | default | what it is |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        cells = [f"`{name}`", _kind(field.annotation, field.metadata), _default(field), _description(field)]
        cells[-1] += "".join(f" Example: `{_python(example)}`." for example in field.examples or [])
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return lines


def _kind(annotation: Any, metadata: list[Any]) -> str:
    """What values of a type are, in words: its Kind, or built from its parts."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Annotated:
        return _kind(args[0], [*args[1:], *metadata])
    metadata = [m for item in metadata for m in (item.metadata if isinstance(item, FieldInfo) else [item])]
    kinds = [item.name for item in metadata if isinstance(item, Kind)]
    if kinds:
        text = kinds[-1]
    elif origin in (Union, UnionType):
        options = [a for a in args if a is not NoneType]
        text = " or ".join(_kind(a, []) for a in options) + (" or `None`" if len(options) < len(args) else "")
    elif origin is Literal:
        text = "one of " + ", ".join(f"`{_python(value)}`" for value in args)
    elif origin is list:
        text = f"[{_kind(args[0], [])}, …]"
    elif origin is dict:
        text = f"{{{_kind(args[0], [])}: {_kind(args[1], [])}}}"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        text = f"[{annotation.__name__}](#{_anchor(annotation.__name__ + ' keys')})"
    elif any(isinstance(item, PathType) for item in metadata):
        text = "file on the controller"
    else:
        text = BASE_KINDS[annotation]
    return text + _bounds(metadata)


def _bounds(metadata: list[Any]) -> str:
    low = next((m.ge for m in metadata if isinstance(m, Ge)), None)
    high = next((m.le for m in metadata if isinstance(m, Le)), None)
    shortest = next((m.min_length for m in metadata if isinstance(m, MinLen)), None)
    longest = next((m.max_length for m in metadata if isinstance(m, MaxLen)), None)
    if low is not None and high is not None:
        return f" ({low} to {high})"
    if shortest is not None and longest is not None:
        return f" ({shortest} to {longest} characters)"
    return f" (at least {shortest})" if shortest is not None else ""


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The structured values (nested models) a type holds."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in get_args(annotation) for model in _models(arg)]


def _python(value: Any) -> str:
    """value as Python source, as group_data/all.py would write it."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", exclude_unset=True)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_python(k)}: {_python(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_python(item) for item in value) + "]"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    return json.dumps(str(value), ensure_ascii=False)


def _anchor(title: str) -> str:
    """The anchor GitHub gives a heading."""
    return "-".join("".join(c for c in title.lower() if c.isalnum() or c in " -").split(" "))


def main() -> None:
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render())
    print(f"wrote {DOC.relative_to(REPO)}")


if __name__ == "__main__":
    main()

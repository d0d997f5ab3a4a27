"""Jinja templates from templates/, rendered the same way for files.template and for
content the deploy checks (visudo, nginx -t) before it lands."""

from __future__ import annotations

from pathlib import Path

from pyinfra.api.util import get_template

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def jinja_options() -> dict:
    # A fresh dict each call: pyinfra pops keys from it.
    return {"trim_blocks": True, "lstrip_blocks": True}


def template_path(name: str) -> str:
    return str(TEMPLATES / name)


def render(name: str, **data) -> str:
    return get_template(template_path(name), jinja_env_kwargs=jinja_options()).render(**data)

"""The Jinja2 templates in ``emberwatch/templates``: emails, notices and the digest."""

from __future__ import annotations

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

_TEMPLATES = Environment(
    loader=PackageLoader("emberwatch", "templates"),
    autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def render_template(name: str, **context: object) -> str:
    return _TEMPLATES.get_template(name).render(**context)

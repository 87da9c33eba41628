"""Every page the project writes comes from the Jinja2 templates in ``aurora_mlops/templates``.

HTML pages extend ``page.html.j2``, which inlines the one stylesheet (``style.css``) so that each
page is a single self-contained file (Kubeflow Pipelines renders an HTML artifact as one file).
Pictures are embedded as ``data:`` URIs for the same reason, so a page still works when its
folder is moved. Tables are built once as a :class:`Table` of strings and written by the
``table`` macro of ``macros.html.j2`` (HTML) or ``macros.md.j2`` (Markdown, through
:func:`aurora_mlops._markdown.markdown_table`), so the two forms of a page cannot disagree.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aurora_mlops._markdown import markdown_table

__all__ = ["TEMPLATES", "Picture", "Table", "render", "stylesheet", "tidy_markdown"]

#: Where the templates and the stylesheet live (package data).
TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True, kw_only=True)
class Table:
    """One section of a page: a heading, a sentence on what it shows, and its cells."""

    title: str
    intro: str
    header: list[str]
    rows: list[list[str]]
    #: What the page says instead of an empty table.
    empty: str = "None."


@dataclass(frozen=True, kw_only=True)
class Picture:
    """A PNG shown on a page: ``name`` is its file name beside the page, ``caption`` its label."""

    name: str
    caption: str
    png: bytes = field(repr=False)

    @property
    def uri(self) -> str:
        """The PNG as a ``data:`` URI (pages embed their pictures)."""
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


def stylesheet() -> str:
    """The shared stylesheet's text."""
    return (TEMPLATES / "style.css").read_text(encoding="utf-8")


def _md_table(t: Table) -> str:
    return markdown_table(t.header, t.rows)


def render(
    name: str,
    context: Mapping[str, Any],
    *,
    filters: Mapping[str, Callable[..., Any]] | None = None,
) -> str:
    """Render the template ``name`` with ``context``.

    HTML templates (``*.html.j2``) are autoescaped and get the stylesheet as ``css``; every
    template gets the ``md_table`` filter and the given ``filters``. Undefined names are errors.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "html.j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md_table"] = _md_table
    env.filters.update(filters or {})
    extra = {"css": stylesheet()} if name.endswith(".html.j2") else {}
    return env.get_template(name).render(**extra, **context)


def tidy_markdown(text: str) -> str:
    """``text`` with runs of blank lines made one (what macros leave between sections)."""
    return re.sub(r"\n{3,}", "\n\n", text).rstrip() + "\n"

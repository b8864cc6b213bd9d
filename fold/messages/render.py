"""Rendering message templates: Jinja2's sandbox, HTML auto-escaped, a text part made
from the HTML when a template has none.

Templates are written by staff, not trusted code: the sandbox refuses attribute access to
Python internals (`__class__`, `mro`, function globals...), and output is capped."""

from __future__ import annotations

import html
import re
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from html.parser import HTMLParser
from typing import Any

from jinja2 import Template, TemplateError, Undefined, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_OUTPUT = 200_000  # characters a rendered part may have


class RenderError(Exception):
    """A template that could not be rendered for one record; the message says why."""


def _date(value: Any, fmt: str = "%-d %B %Y") -> str:
    if value in (None, ""):
        return ""
    if isinstance(value, str):
        text = value.strip().replace("Z", "")
        parsed: date = (
            datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text[:10])
        )
    elif isinstance(value, date):
        parsed = value
    else:
        raise ValueError(f"{value!r} is not a date")
    return parsed.strftime(fmt)


def _amount(value: Any, currency: str = "£", places: int = 2) -> str:
    if value in (None, ""):
        return ""
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise ValueError(f"{value!r} is not an amount") from None
    places = max(0, min(int(places), 6))
    return f"{currency}{number:,.{places}f}"


def _environment(autoescape: bool) -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(autoescape=autoescape, undefined=Undefined)
    env.filters["date"] = _date
    env.filters["amount"] = _amount
    env.filters["money"] = _amount
    env.globals.clear()  # no range(), lipsum(), dict() ... : only the fields and filters
    return env


TEXT = _environment(autoescape=False)
HTML = _environment(autoescape=True)


def check(source: str, *, as_html: bool) -> str | None:
    """None when `source` parses as a template; otherwise why not, with the line."""
    try:
        (HTML if as_html else TEXT).parse(source)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        return f"{exc.message or exc} (line {line})" if line else str(exc.message or exc)
    return None


@lru_cache(maxsize=256)
def _compiled(source: str, as_html: bool) -> Template:
    return (HTML if as_html else TEXT).from_string(source)


def render(source: str, context: dict[str, Any], *, as_html: bool) -> str:
    """`source` rendered with `context`; RenderError says why it could not be."""
    if not source:
        return ""
    try:
        out = _compiled(source, as_html).render(context)
    except Exception as exc:  # the sandbox's SecurityError, a filter's ValueError, ...
        raise RenderError(f"{type(exc).__name__}: {exc}"[:300]) from None
    if len(out) > MAX_OUTPUT:
        raise RenderError(f"the rendered message is longer than {MAX_OUTPUT} characters")
    return out


@lru_cache(maxsize=256)
def uses(source: str, name: str) -> bool:
    """Whether the template refers to the variable `name` (such as `unsubscribe_url`)."""
    try:
        tree = TEXT.parse(source)
    except TemplateError:
        return False
    return any(node.name == name for node in tree.find_all(nodes.Name))


class _TextMaker(HTMLParser):
    BLOCK = {
        "p",
        "div",
        "br",
        "tr",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "li",
        "table",
        "ul",
        "ol",
        "hr",
    }

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.links: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "head", "title"):
            self.hidden += 1
        elif tag in self.BLOCK:
            self.parts.append("\n")
            if tag == "li":
                self.parts.append("- ")
        elif tag == "a":
            self.links.append(dict(attrs).get("href") or "")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "head", "title"):
            self.hidden = max(0, self.hidden - 1)
        elif tag in self.BLOCK:
            self.parts.append("\n")
        elif tag == "a" and self.links:
            href = self.links.pop()
            if href and not href.startswith("#"):
                self.parts.append(f" ({href})")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def text_from_html(markup: str) -> str:
    """A plain-text version of an HTML body: paragraphs kept, links written out."""
    maker = _TextMaker()
    maker.feed(markup)
    maker.close()
    lines = [line.strip() for line in "".join(maker.parts).splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def html_from_text(text: str) -> str:
    """An HTML part for a template with only a text body: escaped, paragraphs kept."""
    paragraphs = [p for p in re.split(r"\n\s*\n", text.strip()) if p]
    return "\n".join("<p>" + html.escape(p).replace("\n", "<br>\n") + "</p>" for p in paragraphs)

"""A model card's text: sections of paragraphs, lists and tables, rendered as Markdown or HTML.

:mod:`pipelines.release.card` says what goes in a card; this module only lays it out. Both
renderers take the same sections, so the two files say the same thing. Every value that ends
up in the HTML is escaped here, in one place: group names, feature names, reasons and
descriptions come from the data and the params and may hold markup.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

# the verdict's colour in the HTML card: passed, rejected
_COLOR = {"passed": "#1a7f37", "rejected": "#cf222e"}


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


Block = str | tuple[str, ...] | Table  # a paragraph, a bulleted list, a table


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple[Block, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class CardText:
    """A card laid out: its title, the verdict line shown first, and its sections."""

    title: str
    verdict: str  # "passed" or "rejected"
    headline: str
    sections: tuple[Section, ...]


# --------------------------------------------------------------------------- Markdown
def _md_cell(value: str) -> str:
    return value.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _md_line(value: str) -> str:
    return value.replace("\n", " ")


def _md_block(block: Block) -> list[str]:
    if isinstance(block, str):
        return [_md_line(block), ""]
    if isinstance(block, tuple):
        return [f"- {_md_line(item)}" for item in block] + [""]
    lines = [
        "| " + " | ".join(_md_cell(h) for h in block.header) + " |",
        "|" + "---|" * len(block.header),
    ]
    lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
    return [*lines, ""]


def render_markdown(card: CardText) -> str:
    lines = [f"# {_md_line(card.title)}", "", f"**{_md_line(card.headline)}**", ""]
    for s in card.sections:
        lines += [f"## {_md_line(s.title)}", ""]
        for block in s.blocks:
            lines += _md_block(block)
    return "\n".join(lines).rstrip("\n") + "\n"


# --------------------------------------------------------------------------- HTML
def _e(value: str) -> str:
    return html.escape(str(value), quote=True)


def _html_block(block: Block) -> str:
    if isinstance(block, str):
        return f"<p>{_e(block)}</p>"
    if isinstance(block, tuple):
        return "<ul>" + "".join(f"<li>{_e(item)}</li>" for item in block) + "</ul>"
    head = "".join(f"<th>{_e(h)}</th>" for h in block.header)
    body = "".join(
        "<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in block.rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_html(card: CardText) -> str:
    color = _COLOR.get(card.verdict, "#6e7781")
    sections = "".join(
        f"<h2>{_e(s.title)}</h2>" + "".join(_html_block(b) for b in s.blocks) for s in card.sections
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{_e(card.title)}</title><style>body{{font-family:sans-serif;margin:2em;"
        "max-width:70em}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left}"
        "table{border-collapse:collapse;margin-bottom:1em}</style></head><body>"
        f"<h1>{_e(card.title)}</h1>"
        f"<p style='font-size:1.2em;font-weight:bold;color:{color}'>{_e(card.headline)}</p>"
        f"{sections}</body></html>\n"
    )


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> Table:
    """A table whose cells are shown as text."""
    return Table(tuple(header), tuple(tuple(str(c) for c in row) for row in rows))

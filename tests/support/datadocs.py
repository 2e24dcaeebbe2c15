"""Reading a Great Expectations Data Docs validation page the way a person does: its text, and
the expectation rows it marks failed."""

from __future__ import annotations

import html
import re
from pathlib import Path

# The first cell of each expectation row holds its status icon (a red cross when it failed);
# the cells after it, up to the next row, hold the expectation, its unexpected values and the
# observed value.
_ROW = re.compile(r'<td id="section-\d+-content-block-2-cell-\d+-1"')
_FAILED_ICON = "fa-times text-danger"


def page_text(markup: str) -> str:
    """What a reader sees: no scripts, styles or tags; whitespace collapsed."""
    markup = re.sub(r"<(script|style)\b.*?</\1>", " ", markup, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def failed_rows(page: Path) -> list[str]:
    """The text of each expectation row the page marks failed, in page order."""
    rows = _ROW.split(page.read_text(encoding="utf-8"))[1:]
    return [page_text(r) for r in rows if _FAILED_ICON in r.split("</td>", 1)[0]]

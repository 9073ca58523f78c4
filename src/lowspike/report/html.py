"""Self-contained HTML: inline CSS, figures as base64 PNG data URIs (inline SVG when only SVG
was rendered), no external reference, so the file opens offline.

Text is the Markdown of the report's blocks, escaped, with its two marks rendered: ``**x**`` as
``<strong>`` and backticks as ``<code>``. In tables, a cell holding a number (with its unit, a
sign, a pair ``a / b`` or a ``mean ± std``) is right-aligned and every other cell left-aligned;
a table wider than the page scrolls inside its own box."""

from __future__ import annotations

import base64
import html
import re

from .document import Document, Heading, Paragraph
from .figures import RenderedFigure
from .tables import Table

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
.table-box { overflow-x: auto; max-width: 100%; margin: 0.5em 0 1.5em; }
table { border-collapse: collapse; font-size: 0.9em; min-width: 60%; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; white-space: nowrap; }
th { background: #eee; }
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3em; }
figure { margin: 1em 0 2em; }
figure img, figure svg { max-width: 100%; height: auto; }
figcaption { font-style: italic; font-size: 0.9em; }
"""


_BOLD = re.compile(r"\*\*(.+?)\*\*")
_NUMBER_CELL = re.compile(r"^[\s\d.,+\-\u2212\u00b1/=()%e]*\d[\s\d.,+\-\u2212\u00b1/=()%e]*"
                          r"(?:\s*(?:pts?|x|[pnum\u00b5]?J|s|ms|MiB|GiB|uJ|nJ)\b[\s\d.,+\-/()%]*)*$")


def _inline(text: str) -> str:
    """Escape text; ``code`` spans in backticks become <code>, ``**bold**`` <strong>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else _BOLD.sub(r"<strong>\1</strong>", p)
                   for i, p in enumerate(pieces))


def is_number_cell(text: str) -> bool:
    """A cell that holds a number with its unit (``1.63 uJ``, ``-94.2%``, ``92.7% / 92.7%``,
    ``0.95 ± 0.01``), as opposed to prose or a name."""
    return bool(_NUMBER_CELL.match(text.strip()))


def _cell(text: str) -> str:
    return f'<td class="num">{_inline(text)}</td>' if is_number_cell(text) else f"<td>{_inline(text)}</td>"


def _table(table: Table) -> str:
    head = "".join(f"<th>{_inline(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(_cell(c) for c in row) + "</tr>" for row in table.rows)
    return (f'<div class="table-box"><table id="{html.escape(table.name)}"><caption>{_inline(table.caption)}'
            f"</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>")


def _figure(figure: RenderedFigure) -> str:
    caption = f"<figcaption>{_inline(figure.caption)}</figcaption>"
    if "png" in figure.files:
        data = base64.b64encode(figure.files["png"]).decode("ascii")
        image = f'<img alt="{html.escape(figure.name)}" src="data:image/png;base64,{data}">'
    elif "svg" in figure.files:
        svg = figure.files["svg"].decode("utf-8")
        image = svg[svg.index("<svg"):]
    else:
        image = ""
    return f'<figure id="{html.escape(figure.name)}">{image}{caption}</figure>'


def to_html(doc: Document) -> str:
    parts = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{_inline(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, RenderedFigure):
            parts.append(_figure(block))
    title = html.escape(doc.title)
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{STYLE}</style></head>\n<body>\n<h1>{title}</h1>\n"
            + "\n".join(parts) + "\n</body></html>\n")

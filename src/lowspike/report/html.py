"""Self-contained HTML: inline CSS, figures as base64 PNG data URIs (inline SVG when only SVG
was rendered), no external reference, so the file opens offline."""

from __future__ import annotations

import base64
import html

from .document import Document, Heading, Paragraph
from .figures import RenderedFigure
from .tables import Table

STYLE = """
body { font-family: sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; min-width: 60%; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #eee; }
caption { caption-side: top; text-align: left; font-weight: bold; padding-bottom: 0.3em; }
figure { margin: 1em 0 2em; }
figure img, figure svg { max-width: 100%; height: auto; }
figcaption { font-style: italic; font-size: 0.9em; }
"""


def _inline(text: str) -> str:
    """Escape text; ``code`` spans in backticks become <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def _table(table: Table) -> str:
    head = "".join(f"<th>{_inline(h)}</th>" for h in table.header)
    body = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    return (f'<table id="{html.escape(table.name)}"><caption>{_inline(table.caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


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

"""A report as an ordered list of blocks, rendered to Markdown here and to HTML in ``html.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union

from .figures import RenderedFigure
from .tables import Table


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


Block = Union[Heading, Paragraph, Table, RenderedFigure]


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    @property
    def figures(self) -> list[RenderedFigure]:
        return [b for b in self.blocks if isinstance(b, RenderedFigure)]

    @property
    def tables(self) -> list[Table]:
        return [b for b in self.blocks if isinstance(b, Table)]

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


FORMAT_DIRS = {"png": "figures", "svg": "svg"}
"""Where each format goes under ``reports/``: PNGs alone in ``figures/``, the folder ``dvc plots``
shows (one image per figure there), SVGs in ``svg/``."""


def figure_file(figure: RenderedFigure, figure_dir: str | None = None) -> str:
    """The relative path Markdown links to: the PNG when rendered, else the SVG."""
    fmt = "png" if "png" in figure.files else "svg"
    return f"{figure_dir or FORMAT_DIRS[fmt]}/{figure.name}.{fmt}"


def to_markdown(doc: Document, figure_dir: str | None = None) -> str:
    parts = [f"# {doc.title}"]
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append(f"{'#' * block.level} {block.text}")
        elif isinstance(block, Paragraph):
            parts.append(block.text)
        elif isinstance(block, Table):
            parts.append(block.to_markdown())
        elif isinstance(block, RenderedFigure):
            if block.files:
                parts.append(f"![{block.name}]({figure_file(block, figure_dir)})\n\n*{block.caption}*")
            else:
                parts.append(f"*{block.caption}*")
    return "\n\n".join(parts) + "\n"

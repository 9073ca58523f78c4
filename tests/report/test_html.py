"""HTML is self-contained: every <img> is a data URI that decodes to a PNG, no external link."""

import base64
from html.parser import HTMLParser

from lowspike.report.document import Document, Heading, Paragraph, to_markdown
from lowspike.report.figures import new_figure, render
from lowspike.report.html import to_html
from lowspike.report.tables import Table


class Collector(HTMLParser):
    def __init__(self):
        super().__init__()
        self.images, self.links, self.svgs = [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append(attrs.get("src", ""))
        if tag in ("link", "script", "a") and (attrs.get("href") or attrs.get("src")):
            self.links.append(attrs)
        if tag == "svg":
            self.svgs += 1


def broken_images(text: str) -> list[str]:
    """The src of every <img> of ``text`` that is not a decodable PNG data URI."""
    collector = Collector()
    collector.feed(text)
    broken = []
    for src in collector.images:
        prefix = "data:image/png;base64,"
        if not src.startswith(prefix) or not base64.b64decode(src[len(prefix):], validate=True).startswith(b"\x89PNG"):
            broken.append(src[:60])
    return broken


def _doc(formats):
    fig, axes = new_figure()
    axes[0].plot([0, 1], [0, 1])
    doc = Document("Title <x>")
    doc.add(Heading("Part"), Paragraph("see `code` & more"),
            Table("t1", "Table 1: a|b", ["h1", "h2"], [["1", "<2>"]]),
            render(fig, "fig_one", "Fig. 1: caption", formats, dpi=30))
    return doc


def test_images_are_decodable_data_uris_and_text_is_escaped():
    text = to_html(_doc(["png", "svg"]))
    collector = Collector()
    collector.feed(text)
    assert len(collector.images) == 1 and broken_images(text) == [] and collector.links == []
    assert "<code>code</code> &amp; more" in text and "&lt;2&gt;" in text and "Title &lt;x&gt;" in text


def test_svg_only_is_inlined():
    text = to_html(_doc(["svg"]))
    collector = Collector()
    collector.feed(text)
    assert collector.images == [] and collector.svgs == 1 and "<?xml" not in text


def test_markdown_links_the_figure_files():
    text = to_markdown(_doc(["png", "svg"]))
    assert "![fig_one](figures/fig_one.png)\n\n*Fig. 1: caption*" in text
    assert "| 1 | <2> |" in text and text.startswith("# Title <x>\n\n## Part")

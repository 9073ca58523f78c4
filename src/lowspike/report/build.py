"""Write both reports: Markdown, self-contained HTML, every figure, and ``dvc plots`` data.

Layout under ``out_dir`` (``reports/``)::

    regularization.md  regularization.html  distillation.md  distillation.html
    figures/<name>.png  svg/<name>.svg          (the formats of params ``report.formats``)
    plots/<name>.csv                            (the figures' data as long tables)

Every file is written atomically; figures left from an earlier run with other params are removed.
"""

from __future__ import annotations

from pathlib import Path

from ..artifacts import write_bytes, write_csv, write_text
from ..config import Params
from . import distillation_report, regularization_report
from .deploy_tables import EXPORTS, deploy_blocks, read_records
from .common import Context, describe_profile, load_results
from .document import FORMAT_DIRS, Document, to_markdown
from .html import to_html

PLOT_DIR = "plots"


def write_document(doc: Document, out_dir: Path, stem: str) -> list[Path]:
    """``<stem>.md``, ``<stem>.html`` and the figures of ``doc``; returns the figure files."""
    written = []
    for figure in doc.figures:
        for fmt, data in figure.files.items():
            target = out_dir / FORMAT_DIRS[fmt] / f"{figure.name}.{fmt}"
            write_bytes(target, data)
            written.append(target)
    write_text(out_dir / f"{stem}.md", to_markdown(doc))
    write_text(out_dir / f"{stem}.html", to_html(doc))
    return written


def write_reports(params: Params, conversion_dir: str | Path = "results/conversion",
                  distillation_dir: str | Path = "results/distillation", out_dir: str | Path = "reports",
                  exports_dir: str | Path = EXPORTS) -> str:
    """Build and write both reports from the aggregated results and the export records; returns a
    one-line summary."""
    out_dir = Path(out_dir)
    ctx = Context(profile=describe_profile(params), formats=tuple(params.report.formats), dpi=params.report.dpi)
    conversion_file = Path(conversion_dir) / "results.json"
    distillation_file = Path(distillation_dir) / "results.json"
    reg_doc, reg_plots = regularization_report.build(load_results(conversion_file), params, ctx, source=str(conversion_file))
    dist_doc, dist_plots = distillation_report.build(load_results(distillation_file), params, ctx,
                                              source=str(distillation_file))
    deployed = read_records(exports_dir)
    reg_doc.add(*deploy_blocks(deployed["conversion"], "export_conversion"))
    dist_doc.add(*deploy_blocks(deployed["distillation"], "export_distillation"))
    figures = write_document(reg_doc, out_dir, "regularization")
    figures += write_document(dist_doc, out_dir, "distillation")
    for fmt, folder in FORMAT_DIRS.items():
        for stale in sorted((out_dir / folder).glob(f"*.{fmt}")):
            if stale not in figures:
                stale.unlink()
    for name, rows in {**reg_plots, **dist_plots}.items():
        write_csv(out_dir / PLOT_DIR / f"{name}.csv", rows)
    return (f"{len(reg_doc.tables)} + {len(dist_doc.tables)} tables, {len(reg_doc.figures)} + "
            f"{len(dist_doc.figures)} figures ({', '.join(ctx.formats)}) in {out_dir}")

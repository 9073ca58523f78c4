"""DVC stage `report`: both papers' reports (Markdown and self-contained HTML), every figure as
PNG and SVG, and the `dvc plots` data, from the aggregated results of the two studies and the
NIR export records (`runs/export`) only; each
study's headline metrics (`results/<study>/headline.json`), and the MLflow run of the pipeline
execution (experiment `lowspike-pipeline`) holding them with the params."""

from lowspike import runtime
from lowspike.report.build import write_reports
from lowspike.report.headline import numbers, words, write_headlines
from lowspike.stage_params import key_values, stage_keys
from lowspike.studies import EXPORTS
from lowspike.tracking import start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--conversion", default="results/conversion")
    parser.add_argument("--distillation", default="results/distillation")
    parser.add_argument("--exports", default=str(EXPORTS))
    parser.add_argument("--out", default="reports")
    args, params = runtime.parse_stage_args(parser)
    runtime.setup(uses_torch=False)
    summary = write_reports(params, args.conversion, args.distillation, args.out, args.exports)
    headlines = write_headlines(list(params.energy.models), args.conversion, args.distillation)
    with start_run(params.tracking, "pipeline", "pipeline", {"stage": "report", "lowspike.pipeline": "true"}) as run:
        run.log_params(key_values(params, stage_keys("report")))
        run.log_metrics(numbers(headlines))
        run.set_tags(words(headlines))
        run.tag_current_stage_runs()
    runtime.announce("report", summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))

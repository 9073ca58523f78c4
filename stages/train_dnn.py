"""DVC stages `train_dnn_<arch>@<dataset>-<point>` (``<point>`` = ``<regularizer>-<lambda>``),
`train_dnn_baseline@<dataset>-<arch>` and `train_dnn_baseline_seed@<dataset>-<arch>-<seed>`: train
one DNN of the conversion study with an activity regularizer (Eq. 4 of the regularization
paper), or the unregularized baseline (with another seed, for its seed spread)."""

from lowspike import runtime
from lowspike.stage_params import key_values, stage_keys
from lowspike.studies import conversion_points, conversion_train
from lowspike.tracking import start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--point", required=True,
                        help="<regularizer>-<lambda> of regularization.points, baseline, or baseline-seed<k>")
    args, params = runtime.parse_stage_args(parser)
    point = conversion_points.Point.parse(args.dataset, args.arch, args.point)
    conversion_points.check_point(params, point)
    runtime.setup()
    tags = {"dataset": point.dataset, "model": point.arch, "method": point.regularizer, "lambda": point.lam,
            "seed": point.train_seed(params), "stage": "train_dnn"}
    with start_run(params.tracking, "regularization", f"train {point.dataset}/{point.arch}/{point.name}", tags) as run:
        run.log_params({**key_values(params, stage_keys("train_dnn")),
                        "point": {"regularizer": point.regularizer, "lambda": point.lam}})
        summary = conversion_train.train_point(
            params, point,
            on_epoch=lambda record: run.log_metrics({k: v for k, v in record.items() if k != "epoch"},
                                                    step=record["epoch"]),
            progress=runtime.show_progress(),
        )
        run.log_metrics({"best_val_loss": summary["best_val_loss"], "best_val_accuracy": summary["val_accuracy"],
                         "epochs_run": summary["epochs_run"], "train_seconds": summary["train_seconds"],
                         "diverged": summary["status"] == "diverged"})
        run.link_interrupted(summary["resumed_from_epoch"])
    runtime.announce(f"train_dnn {point.dataset}/{point.arch}/{point.name}",
                     f"status {summary['status']}, val accuracy {summary['val_accuracy']}, "
                     f"{summary['epochs_run']} epochs")
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))

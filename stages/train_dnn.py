"""DVC stages `train_dnn_<arch>@<dataset>-<regularizer>-<lambda>` (and `train_dnn_baseline@<dataset>-<arch>-none-0.0`):
train one DNN of the conversion study with an activity regularizer (Eq. 4 of the regularization paper)."""

from lowspike import runtime
from lowspike.studies import conversion
from lowspike.tracking import start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--arch", required=True)
    parser.add_argument("--regularizer", required=True, help="a regularizer spec, or 'none' for the baseline")
    parser.add_argument("--lam", type=float, required=True)
    args, params = runtime.parse_stage_args(parser)
    point = conversion.Point(args.dataset, args.arch, args.regularizer, args.lam)
    conversion.check_point(params, point)
    runtime.setup()
    tags = {"dataset": point.dataset, "model": point.arch, "method": point.regularizer, "lambda": point.lam,
            "seed": params.regularization.train.seed, "stage": "train_dnn"}
    with start_run(params.tracking, "regularization", f"train {point.dataset}/{point.arch}/{point.name}", tags) as run:
        run.log_params({"regularization": params.regularization.model_dump(), "data": params.data.model_dump(),
                        "point": {"regularizer": point.regularizer, "lambda": point.lam}})
        summary = conversion.train_point(
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

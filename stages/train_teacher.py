"""DVC stage `train_teacher@<dataset>`: train the FNN teacher of the distillation study (Table I
of the distillation paper), reused by every KD student of the dataset."""

from lowspike import runtime
from lowspike.distillation import check_dataset
from lowspike.stage_params import key_values, stage_keys
from lowspike.studies import distillation_train
from lowspike.tracking import start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    args, params = runtime.parse_stage_args(parser)
    check_dataset(params, args.dataset)
    runtime.setup()
    setup = distillation_train.setup_for(params, args.dataset)
    tags = {"dataset": args.dataset, "model": setup.teacher, "method": "teacher", "stage": "train_teacher"}
    with start_run(params.tracking, "distillation", f"teacher {args.dataset}/{setup.teacher}", tags) as run:
        run.log_params(key_values(params, stage_keys("train_teacher", args.dataset)))
        summary = distillation_train.train_teacher(
            params, args.dataset,
            on_epoch=lambda record: run.log_metrics({k: v for k, v in record.items() if k != "epoch"},
                                                    step=record["epoch"]),
            progress=runtime.show_progress(),
        )
        run.log_metrics({"accuracy": summary["accuracy"], "best_val_accuracy": summary["val_accuracy"],
                         "parameters": summary["parameters"], "epochs_run": summary["epochs_run"],
                         "train_seconds": summary["train_seconds"]})
        run.link_interrupted(summary["resumed_from_epoch"])
    runtime.announce(f"train_teacher {args.dataset}",
                     f"{setup.teacher} ({summary['parameters']:,} params): test accuracy {summary['accuracy']:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))

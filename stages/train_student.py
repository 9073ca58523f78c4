"""DVC stage `train_student_<method>@...`: train one spiking student of the distillation study
with a method of :data:`lowspike.distillation.METHODS`: the baseline, a KD setting (Eqs. 1-5 of
the distillation paper), a regularization setting (Eqs. 6-10), or beyond the paper: KD and
activation regularization combined, feature-based KD (FitNets hints), hints and activation
regularization combined."""

from lowspike import runtime
from lowspike.distillation import METHODS, SETTINGS, check_run, run_from_args
from lowspike.stage_params import key_values, stage_keys
from lowspike.studies import distillation_train
from lowspike.tracking import start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--method", required=True, choices=list(METHODS))
    parser.add_argument("--seed", type=int, required=True)
    for key, (kind, help_text) in SETTINGS.items():
        parser.add_argument(f"--{key.replace('_', '-')}", dest=key, type=kind, help=help_text)
    args, params = runtime.parse_stage_args(parser)
    run_spec = run_from_args(args.dataset, args.method, args.seed, **{k: getattr(args, k) for k in SETTINGS})
    check_run(params, run_spec)
    runtime.setup()
    setup = distillation_train.setup_for(params, args.dataset)
    tags = {"dataset": run_spec.dataset, "model": setup.student, "method": run_spec.method, "seed": run_spec.seed,
            "run": run_spec.name, "lambda": run_spec.setting.get("lam"), "hint_weight": run_spec.setting.get("weight"),
            "beyond_paper": not run_spec.spec.paper, "stage": "train_student"}
    with start_run(params.tracking, "distillation", f"student {run_spec.dataset}/{run_spec.name}/seed{run_spec.seed}",
                   tags) as run:
        keys = stage_keys("train_student", args.dataset, study_alpha=run_spec.spec.uses_study_alpha)
        run.log_params({**key_values(params, keys), "setting": run_spec.setting})
        summary = distillation_train.train_student(
            params, run_spec,
            on_epoch=lambda record: run.log_metrics({k: v for k, v in record.items() if k != "epoch"},
                                                    step=record["epoch"]),
            progress=runtime.show_progress(),
        )
        run.log_metrics({"best_val_accuracy": summary["val_accuracy"], "best_val_spikerate": summary["val_spikerate"],
                         "epochs_run": summary["epochs_run"], "train_seconds": summary["train_seconds"],
                         "diverged": summary["status"] == "diverged"})
        run.link_interrupted(summary["resumed_from_epoch"])
    runtime.announce(f"train_student {run_spec.dataset}/{run_spec.name}/seed{run_spec.seed}",
                     f"status {summary['status']}, val accuracy {summary['val_accuracy']}, "
                     f"val spikerate {summary['val_spikerate']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))

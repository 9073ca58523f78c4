"""DVC stage `train_student_<method>@...`: train one spiking student of the distillation study:
the baseline, a KD setting (Eqs. 1-5 of the distillation paper), a regularization setting
(Eqs. 6-10), or beyond the paper: KD and activation regularization combined, feature-based KD
(FitNets hints), hints and activation regularization combined."""

from lowspike import runtime
from lowspike.studies import distillation
from lowspike.tracking import start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--method", required=True, choices=distillation.METHODS)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--tau", type=float)
    parser.add_argument("--tau-s", dest="tau_s", type=float)
    parser.add_argument("--tau-t", dest="tau_t", type=float)
    parser.add_argument("--norm")
    parser.add_argument("--lam", type=float)
    parser.add_argument("--weight", type=float, help="hint weight w of feature-based KD")
    args, params = runtime.parse_stage_args(parser)
    setting = {k: getattr(args, k) for k in ("alpha", "tau", "tau_s", "tau_t", "norm", "lam", "weight")}
    run_spec = distillation.run_from_args(args.dataset, args.method, args.seed, **setting)
    distillation.check_run(params, run_spec)
    runtime.setup()
    setup = distillation.setup_for(params, args.dataset)
    tags = {"dataset": run_spec.dataset, "model": setup.student, "method": run_spec.method, "seed": run_spec.seed,
            "run": run_spec.name, "lambda": run_spec.setting.get("lam"), "hint_weight": run_spec.setting.get("weight"),
            "beyond_paper": run_spec.method in distillation.BEYOND_PAPER_METHODS, "stage": "train_student"}
    with start_run(params.tracking, "distillation", f"student {run_spec.dataset}/{run_spec.name}/seed{run_spec.seed}",
                   tags) as run:
        run.log_params({"setup": setup.model_dump(), "alpha": params.distillation.alpha,
                        "surrogate": params.distillation.surrogate, "setting": run_spec.setting})
        summary = distillation.train_student(
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

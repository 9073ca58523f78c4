"""DVC stages `export_conversion@<dataset>-<arch>` and `export_distillation@<dataset>`: the
baseline and every selected model (Table 1 of the conversion study, Table III of the
distillation study) written as NIR files, each run back in sinabs and snntorch on the test split
against lowspike's own spikes (docs/deploy.md)."""

from lowspike import runtime
from lowspike.distillation import check_dataset
from lowspike.errors import ParamsError
from lowspike.stage_params import key_values, stage_keys
from lowspike.studies import conversion_points, export
from lowspike.tracking import log_point_record, start_run


def main() -> int:
    parser = runtime.stage_parser(__doc__)
    parser.add_argument("--study", required=True, choices=["conversion", "distillation"])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--arch", help="the architecture (conversion study)")
    args, params = runtime.parse_stage_args(parser)
    if args.study == "conversion":
        if not args.arch:
            raise ParamsError("--arch is required for --study conversion")
        conversion_points.check_point(params, conversion_points.Point(args.dataset, args.arch, "none", 0.0))
        where, keys = f"{args.dataset}/{args.arch}", stage_keys("export_conversion")
        folder = export.conversion_folder(args.dataset, args.arch)
    else:
        check_dataset(params, args.dataset)
        where, keys = args.dataset, stage_keys("export_distillation", args.dataset)
        folder = export.distillation_folder(args.dataset)
    runtime.setup()
    study = "regularization" if args.study == "conversion" else "distillation"
    tags = {"dataset": args.dataset, "stage": f"export_{args.study}", **({"model": args.arch} if args.arch else {})}
    with start_run(params.tracking, study, f"export {where}", tags) as run:
        run.log_params(key_values(params, keys))
        record = (export.export_conversion(params, args.dataset, args.arch) if args.study == "conversion"
                  else export.export_distillation(params, args.dataset))
        for model, figures in export.metrics(record).items():
            log_point_record(run, model, figures)
        for entry in record["models"]:
            run.log_artifact(folder / entry["file"], "nir")
        run.log_artifact(folder / export.DEPLOY_RECORD)
    runtime.announce(f"export_{args.study} {where}", export.summary(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(runtime.run_stage(main))

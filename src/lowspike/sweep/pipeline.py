"""The DVC side of the sweep: what to run, in which order, and how a finished stage is recorded.

Everything here goes through DVC's own Python API (``dvc.repo.Repo``), never through a
reading of ``dvc.yaml``: the stage graph is ``repo.index.graph`` with frozen stages cut off
(``dvc.repo.reproduce.get_active_graph``), the order is DVC's reproduction order
(``plan_repro``), and a stage is stale when ``stage.changed()`` says so (deps, outs or its
definition changed) or when a stage upstream of it is stale (it will get new inputs).

Recording a stage repeats what ``dvc repro`` does after a stage's command succeeded
(``Stage.run`` then ``_reproduce_stage`` in DVC 3.67): ``stage.save()`` (hash deps and outs;
the run cache only when every non-metric out is cached), ``stage.commit()`` (outs into the
cache, relinked) and ``stage.dump(update_pipeline=False)`` (the stage's entry in dvc.lock).
The repo lock is held only while planning and while recording a batch.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping, Sequence


class SweepError(Exception):
    """The pipeline cannot be run by the sweep runner; ``str()`` says why."""


@dataclass(frozen=True)
class StageSpec:
    """What a worker needs to run one stage, with paths relative to the repository root."""

    name: str
    commands: tuple[str, ...]
    wdir: str
    deps: tuple[str, ...]
    params_files: tuple[str, ...]
    outs: tuple[str, ...]
    upstream: tuple[str, ...]

    @property
    def family(self) -> str:
        """The stage's name without its matrix item: ``train_dnn`` for ``train_dnn@mnist5k-...``."""
        return self.name.split("@", 1)[0]


@dataclass
class Pipeline:
    """A reproduction plan: every stage DVC would visit, in DVC's order, and the stale ones."""

    root: Path
    order: list[StageSpec]
    stale: dict[str, str] = field(default_factory=dict)
    restored: list[str] = field(default_factory=list)

    def stale_stages(self) -> list[StageSpec]:
        return [spec for spec in self.order if spec.name in self.stale]

    def producers(self) -> dict[str, str]:
        """``{out path: name of the stage writing it}`` over the whole plan."""
        return {out: spec.name for spec in self.order for out in spec.outs}


def critical_path_order(specs: Sequence[StageSpec], seconds: Mapping[str, float] | None = None) -> list[StageSpec]:
    """``specs`` (a topological order, DVC's) sorted by upward rank, highest first, DVC's order
    breaking ties: the rank of a stage is its expected seconds plus the largest rank among the
    stages of ``specs`` that read its outputs (HEFT's rank_u, Topcuoglu et al. 2002), so the
    stages with the longest chain still ahead of them start first. A stage missing from
    ``seconds`` counts 1 (then the rank is the length of that chain in stages). Sorting by
    rank keeps dependencies in order: a stage outranks everything downstream of it."""
    seconds = seconds or {}
    names = {spec.name for spec in specs}
    downstream: dict[str, list[str]] = {spec.name: [] for spec in specs}
    for spec in specs:
        for name in spec.upstream:
            if name in names:
                downstream[name].append(spec.name)
    rank: dict[str, float] = {}
    for spec in reversed(specs):
        after = max((rank[name] for name in downstream[spec.name]), default=0.0)
        rank[spec.name] = max(seconds.get(spec.name, 1.0), 1e-3) + after
    position = {spec.name: index for index, spec in enumerate(specs)}
    return sorted(specs, key=lambda spec: (-rank[spec.name], position[spec.name]))


def _relative(path: str, root: str) -> str:
    return Path(os.path.relpath(path, root)).as_posix()


def _spec(stage, graph, root: str) -> StageSpec:
    from dvc.dependency.param import ParamsDependency

    deps, params_files = [], []
    for dep in stage.deps:
        if isinstance(dep, ParamsDependency):
            params_files.append(_relative(dep.fs_path, root))
        elif dep.protocol == "local" and dep.is_in_repo:
            deps.append(_relative(dep.fs_path, root))
        else:
            raise SweepError(f"{stage.addressing}: dependency {dep} is not a local path of the repository; "
                             "run this stage with `dvc repro`")
    outs = []
    for out in stage.outs:
        if out.protocol != "local" or not out.is_in_repo:
            raise SweepError(f"{stage.addressing}: output {out} is outside the repository; run it with `dvc repro`")
        outs.append(_relative(out.fs_path, root))
    commands = stage.cmd if isinstance(stage.cmd, list) else [stage.cmd]
    return StageSpec(
        name=stage.addressing,
        commands=tuple(commands),
        wdir=_relative(stage.wdir, root),
        deps=tuple(deps),
        params_files=tuple(dict.fromkeys(params_files)),
        outs=tuple(outs),
        upstream=tuple(up.addressing for up in graph.successors(stage)),
    )


@contextlib.contextmanager
def inside(root: str | Path):
    """Work from the repository root, as the DVC CLI does: targets resolve from there and a
    stage's ``addressing`` (its name in messages and in ``DVC_STAGE``) has no path prefix.
    DVC's per-stage info messages ("Updating lock file") are held back: the runner prints
    one line per stage of its own."""
    here = os.getcwd()
    dvc_logger = logging.getLogger("dvc")
    level = dvc_logger.level
    os.chdir(root)
    dvc_logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        dvc_logger.setLevel(level)
        os.chdir(here)


def open_repo(root: str | Path):
    """DVC's ``Repo`` for ``root``, waiting for the repo lock instead of failing when another
    DVC command holds it for a moment."""
    from dvc.repo import Repo

    return Repo(str(root), _wait_for_lock=True)


def _restore_from_cache(repo, stage) -> bool:
    """Check the stage's outs out of DVC's cache instead of running it, as ``dvc repro`` does
    (``dvc.stage.cache.StageCache.restore``): when the deps are those dvc.lock records and its
    outs are cached, or the run cache has an entry for the deps as they are now. The deps are
    compared with dvc.lock before they are hashed anew (hashing them first would make any edited
    dep look "as locked" and restore the outs of the old code). Returns whether it did."""
    from dvc.dependency.base import DependencyDoesNotExistError
    from dvc.stage.cache import RunCacheNotFoundError
    from dvc.stage.serialize import to_single_stage_lockfile

    if not stage.cmd or stage.frozen:
        return False
    try:
        deps_as_locked = stage.deps_cached()  # before save_deps, which makes every dep "as locked"
        if not stage.changed_stage() and deps_as_locked and all(bool(out.hash_info) for out in stage.outs):
            entry = to_single_stage_lockfile(stage)  # the deps did not change: dvc.lock's outs
        else:
            stage.save_deps()  # the run cache is keyed by the deps as they are now
            entry = repo.stage_cache._load(stage)
    except (RunCacheNotFoundError, DependencyDoesNotExistError):
        return False
    if not entry:
        return False
    cached = repo.stage_cache._create_stage(entry, wdir=stage.wdir)
    if not cached.outs_cached():
        return False
    stage.remove_outs(ignore_remove=False, force=False)
    cached.checkout()
    record_stage(stage)
    return True


def save_stage(stage) -> None:
    """What ``dvc repro`` does after a stage's command, short of writing dvc.lock: hash deps and
    outs, fill the run cache when every non-metric, non-plot out is cached, commit the outs to
    the cache."""
    no_cache_outs = any(not out.use_cache for out in stage.outs if not (out.is_metric or out.is_plot))
    stage.save(run_cache=not no_cache_outs)
    stage.commit()


def record_stage(stage) -> None:
    """Record a stage whose outs are in the workspace: :func:`save_stage`, then its dvc.lock entry."""
    save_stage(stage)
    stage.dump(update_pipeline=False)


def record_stages(stages: list) -> None:
    """:func:`record_stage` of several stages with one write of each dvc.lock (in the order
    given, which is the order of the entries): a lock file of a few hundred stages takes
    seconds to rewrite, so writing it once per stage would grow quadratically."""
    for stage in stages:
        save_stage(stage)
    by_file: dict[str, list] = {}
    for stage in stages:
        by_file.setdefault(stage.dvcfile.path, []).append(stage)
    for group in by_file.values():
        group[0].dvcfile.dump_stages(group, update_pipeline=False)


def plan(root: str | Path, targets: Sequence[str] = (), force: bool = False, use_cache: bool = True,
         repo=None) -> Pipeline:
    """The stages ``dvc repro [targets]`` would visit, in its order, and which of them are stale.

    ``force`` marks every visited stage stale (``dvc repro -f``). With ``use_cache``, a stale
    stage whose upstream is up to date is first restored from DVC's cache when it can be (and
    recorded), exactly as ``dvc repro`` would; it is then up to date.
    """
    from dvc.repo import lock_repo
    from dvc.repo.reproduce import collect_stages, get_active_graph, plan_repro

    own = repo is None
    repo = repo or open_repo(root)
    try:
        with inside(repo.root_dir), lock_repo(repo), repo.scm_context(quiet=True):
            stages = collect_stages(repo, list(targets) or ["dvc.yaml"])
            graph = get_active_graph(repo.index.graph)
            steps = plan_repro(graph, stages)
            pipeline = Pipeline(Path(repo.root_dir), [])
            for stage in steps:
                spec = _spec(stage, graph, repo.root_dir)
                pipeline.order.append(spec)
                stale_upstream = [name for name in spec.upstream if name in pipeline.stale]
                if force:
                    reason = "forced"
                elif stale_upstream:
                    reason = f"upstream {stale_upstream[0]} is stale"
                elif stage.changed(upstream=list(graph.successors(stage))):
                    if use_cache and _restore_from_cache(repo, stage):
                        pipeline.restored.append(spec.name)
                        continue
                    reason = "changed"
                else:
                    continue
                if not stage.cmd or stage.is_import:
                    raise SweepError(f"{spec.name} changed but has no command to run (a data source or an import): "
                                     "update it with `dvc add`/`dvc update`")
                pipeline.stale[spec.name] = reason
            return pipeline
    finally:
        if own:
            repo.close()


class Recorder:
    """Records finished stages into dvc.lock and the cache, in DVC's reproduction order.

    Stages are recorded in batches: each batch holds the repo lock once. ``record_ready``
    records the longest run of the plan whose stages have all finished, so dvc.lock lists
    the stages in the order a serial ``dvc repro`` writes them; ``record_all`` records every
    finished stage (at the end of a run, after a failure or an interruption).
    """

    def __init__(self, root: str | Path, pipeline: Pipeline):
        self.repo = open_repo(root)
        self.order = [spec.name for spec in pipeline.stale_stages()]
        self.finished: set[str] = set()
        self.recorded: list[str] = []
        self.files_to_track: set[str] = set()

    def finish(self, name: str) -> None:
        self.finished.add(name)

    def pending(self) -> list[str]:
        return [name for name in self.order if name in self.finished and name not in self.recorded]

    def _ready_prefix(self) -> list[str]:
        ready = []
        for name in self.order:
            if name in self.recorded:
                continue
            if name not in self.finished:
                break
            ready.append(name)
        return ready

    def record_ready(self) -> list[str]:
        return self._record(self._ready_prefix())

    def record_all(self) -> list[str]:
        return self._record(self.pending())

    def _record(self, names: Iterable[str]) -> list[str]:
        names = list(names)
        if not names:
            return []
        from dvc.repo import lock_repo

        with inside(self.repo.root_dir), lock_repo(self.repo), self.repo.scm_context(quiet=True) as context:
            by_name = {stage.addressing: stage for stage in self.repo.index.stages}
            record_stages([by_name[name] for name in names])
            self.recorded.extend(names)
            self.files_to_track |= set(context.files_to_track)
        return names

    def git_hint(self) -> str | None:
        """What ``dvc repro`` says at its end: the files to ``git add`` (or stages them itself
        when ``core.autostage`` is set)."""
        if not self.files_to_track:
            return None
        from dvc.scm import NoSCM

        if isinstance(self.repo.scm, NoSCM):
            return None
        if self.repo.config["core"].get("autostage", False):
            self.repo.scm_context.add(sorted(self.files_to_track))
            return None
        return "To track the changes with git, run:\n\n\tgit add " + " ".join(sorted(self.files_to_track))

    def close(self) -> None:
        self.repo.close()

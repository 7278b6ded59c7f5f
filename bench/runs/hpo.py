"""Hyperparameter optimization of a one-shot optimizer with Optuna (NAS-Bench-1Shot1, Section 6).

A trial is one search, built like every run (`RunConfig.resolve` -> `Trainer`), with settings drawn from
the ranges the plug-in declares (`OneShotOptimizer.tunable`) and the trainer's (`TRAINER_RANGES`, from
NAS-Bench-1Shot1's BOHB configuration space, optimizers/bohb_one_shot/worker.py). Every trial uses the
same seed, so trials differ by their settings only.

- Objective (minimized): the validation regret of the search's final architecture, the mean validation
  error of its 3 repeats minus the space's best validation error (NB-101: the reference constant;
  digits: the tabulated space's best mean). Test data never enters the selection; each trial's final
  test regret is recorded beside it. Where no best validation error is known the objective is the
  validation error itself (same ranking) and the study says so.
- Multi-fidelity over search epochs: after every epoch the trial reports that epoch's validation regret
  and Optuna's HyperbandPruner (reduction factor 3, 1 to `epochs` epochs) stops unpromising trials.
- Sampler: multivariate TPE (BOHB's model is multivariate too), with the constant liar for parallel
  workers.
- Resumable and shareable: the study lives in SQLite inside the output directory; several processes (or
  machines sharing the directory) run trials of one study. The study holds `trials` finished (complete
  or pruned) trials at the end, whoever ran them. A trial stopped by Ctrl-C, or left running by a killed
  process (found by Optuna's heartbeat after `GRACE_S`), is queued again with the same settings and
  continues from its run directory's checkpoint.
- The Hessian eigenvalue is not measured in trials (`hessian=false` unless --set says otherwise): it is a
  measurement, not part of the search.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import results
from bench.errors import HarnessError, UsageError
from bench.runs.config import RunConfig
from bench.runs.trainer import DivergedError, Trainer, config_record
from bench.settings import Range

log = logging.getLogger(__name__)

# The trainer's ranges (NAS-Bench-1Shot1's BOHB space for one-shot optimizers, its "cs 3", which also
# switches cutout on and off).
TRAINER_RANGES: dict[str, Range] = {
    "cutout": Range(choices=(False, True)),
    "w_lr": Range(1e-3, 1.0, log=True),
    "w_weight_decay": Range(1e-5, 1e-3, log=True),
    "w_momentum": Range(0.0, 0.99),
    "a_lr": Range(1e-5, 1e-2, log=True),
    "a_weight_decay": Range(1e-4, 1e-1, log=True),
    "batch_size": Range(16, 128, integer=True),
    "grad_clip": Range(1.0, 9.0),
}
HPO_DEFAULTS: dict[str, str] = {"hessian": "false"}  # under the user's --set

STUDY_DB = "study.sqlite3"
SPEC_JSON = "hpo.json"
TRIALS_DIR = "trials"
TRIALS_CSV = "trials.csv"
BEST_TXT = "best_settings.txt"
PLOT_STEM = "best_regret"
HEARTBEAT_S = 30
GRACE_S = 120
MAX_FAILURES = 10  # failed trials (refused settings, divergence) one process tolerates before it stops


class HpoError(HarnessError):
    """A study that cannot make progress."""


@dataclass
class HpoSpec:
    """What one study tunes; its identity on disk (hpo.json)."""

    optimizer: str
    space: int
    benchmark: str
    preset: str = "paper"
    seed: int = 0
    fixed: dict[str, str] = field(default_factory=dict)  # --set values, as typed
    tune: list[str] | None = None  # settings to tune; None: every one with a range that is not fixed
    device: str = "auto"

    def settings(self) -> dict[str, str]:
        """The fixed settings of every trial: HPO's defaults under the user's --set."""
        return {**HPO_DEFAULTS, **self.fixed}

    def base_config(self) -> RunConfig:
        """The config of a trial without tuned values (validates optimizer, space, preset and --set)."""
        return RunConfig.resolve(
            self.optimizer,
            self.space,
            benchmark=self.benchmark,
            preset=self.preset,
            overrides=self.settings(),
            seed=self.seed,
            device=self.device,
        )

    def ranges(self) -> dict[str, Range]:
        """The search space: the trainer's and the plug-in's ranges, minus fixed settings, restricted to
        `tune`; errors name the settings that have ranges."""
        plugin = self.base_config().plugin()
        own = {f.name for f in dataclasses.fields(RunConfig)}
        available = {k: r for k, r in TRAINER_RANGES.items() if k in own}
        available.update(plugin.tunable)
        if self.tune is not None:
            unknown = [k for k in self.tune if k not in available]
            if unknown:
                raise UsageError(
                    f"--tune {','.join(unknown)}: no search range for {self.optimizer}; "
                    f"settings with ranges: {', '.join(available)}"
                )
            fixed_too = [k for k in self.tune if k in self.fixed]
            if fixed_too:
                raise UsageError(f"--tune {','.join(fixed_too)}: also fixed with --set; drop one of them")
            chosen = {k: available[k] for k in self.tune}
        else:
            chosen = {k: r for k, r in available.items() if k not in self.settings()}
        if not chosen:
            raise UsageError("nothing left to tune: every setting with a range is fixed by --set")
        return chosen

    def identity(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("device")  # where it runs is not what it is
        return d


# ---- objective values ----------------------------------------------------------------------------
def best_valid_error(table: Any, space: int) -> float | None:
    """The space's best validation error where the table knows it (digits once tabulated; NB-101's
    reference constant), else None."""
    return table.best_valid_error(space)


def valid_regret(row: Mapping[str, Any], best: float | None) -> float:
    return float(row["valid_error_mean"]) - (best if best is not None else 0.0)


def suggest(trial: Any, name: str, rng: Range) -> Any:
    if rng.choices:
        return trial.suggest_categorical(name, list(rng.choices))
    if rng.integer:
        return trial.suggest_int(name, int(rng.low), int(rng.high), log=rng.log)
    return trial.suggest_float(name, float(rng.low), float(rng.high), log=rng.log)


# ---- the study -----------------------------------------------------------------------------------
def search_epochs(spec: HpoSpec) -> int:
    """Epochs of every trial's search: Hyperband's largest resource."""
    base = spec.base_config()
    return base.resolved_epochs(base.plugin().reference_epochs)


def storage(out: Path) -> Any:
    """The study's SQLite storage, with a heartbeat so trials of killed processes are found again."""
    import inspect

    import optuna

    # Optuna 4.9 renamed the callback; older versions know only the first name.
    params = inspect.signature(optuna.storages.RDBStorage).parameters
    callback = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in params
        else "failed_trial_callback"
    )
    with _quiet_experimental():
        return optuna.storages.RDBStorage(
            f"sqlite:///{(Path(out) / STUDY_DB).resolve()}",
            engine_kwargs={"connect_args": {"timeout": 60}},
            heartbeat_interval=HEARTBEAT_S,
            grace_period=GRACE_S,
            **{callback: requeue},
        )


def study_name(spec: HpoSpec) -> str:
    return f"{spec.optimizer}_space{spec.space}_{spec.benchmark}"


def open_study(spec: HpoSpec, out: Path, epochs: int) -> Any:
    import optuna

    with _quiet_experimental():
        sampler = optuna.samplers.TPESampler(seed=spec.seed, multivariate=True, constant_liar=True)
    pruner = optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs, reduction_factor=3)
    return optuna.create_study(
        study_name=study_name(spec),
        storage=storage(out),
        sampler=sampler,
        pruner=pruner,
        direction="minimize",
        load_if_exists=True,
    )


@contextlib.contextmanager
def _quiet_experimental() -> Iterator[None]:
    """Multivariate TPE and fail_stale_trials are marked experimental in some Optuna versions."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        yield


def check_compatible(spec: HpoSpec, out: Path) -> None:
    """Refuse an output directory holding a study of other settings (more trials is fine)."""
    existing = results.read_json(Path(out) / SPEC_JSON)
    if existing and existing.get("spec") != spec.identity():
        old, new = existing.get("spec") or {}, spec.identity()
        diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        raise UsageError(f"{out} holds a study with other settings ({', '.join(diff)}); use another --out")


def write_spec(spec: HpoSpec, out: Path, ranges: Mapping[str, Range], best_valid: float | None) -> None:
    results.write_json(
        Path(out) / SPEC_JSON,
        {
            "spec": spec.identity(),
            "ranges": {k: r.describe() for k, r in ranges.items()},
            "objective": (
                "final validation regret (mean validation error of the 3 repeats minus the space's best)"
                if best_valid is not None
                else "final validation error (no best validation error known for this table and space)"
            ),
            "best_valid_error": best_valid,
        },
    )


def origin(trial: Any) -> int:
    """The trial whose run directory this one continues (itself unless it was queued again)."""
    return int(trial.user_attrs.get("resumes", trial.number))


def requeue(study: Any, trial: Any) -> None:
    """Queue an interrupted or abandoned trial again: same settings, same run directory."""
    study.enqueue_trial(dict(trial.params), user_attrs={"resumes": origin(trial)}, skip_if_exists=False)
    log.info("trial %d queued again (continues trial %d's run)", trial.number, origin(trial))


def requeue_interrupted(study: Any) -> int:
    """Trials that Ctrl-C stopped are queued again, once each (the study remembers which)."""
    from optuna.trial import TrialState

    done = set(study.user_attrs.get("requeued", []))
    todo = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        if t.user_attrs.get("interrupted") and t.number not in done
    ]
    for t in todo:
        requeue(study, t)
        done.add(t.number)
    if todo:
        study.set_user_attr("requeued", sorted(done))
    return len(todo)


def counts(study: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


# ---- one trial -------------------------------------------------------------------------------------
TableFactory = Callable[[], Any]
DataFactory = Callable[[RunConfig], Any]


class Objective:
    """Runs one trial's search in this process (one table, data loaded once per data setting)."""

    def __init__(
        self, spec: HpoSpec, out: Path, ranges: Mapping[str, Range], table: Any, data_factory: DataFactory
    ):
        self.spec = spec
        self.out = Path(out)
        self.ranges = dict(ranges)
        self.table = table
        self.data_factory = data_factory
        self.best_valid = best_valid_error(table, spec.space)
        self._data: dict[tuple, Any] = {}
        self.failures = 0  # trials of this process that failed (refused settings, divergence)
        self.last_failure = ""

    def data(self, cfg: RunConfig) -> Any:
        key = (cfg.benchmark, cfg.train_portion, cfg.data_limit, cfg.augment)
        if key not in self._data:
            self._data[key] = self.data_factory(cfg)
        return self._data[key]

    def __call__(self, trial: Any) -> float:
        try:
            return self._run(trial)
        except (HarnessError, DivergedError) as exc:
            self.failures += 1
            self.last_failure = f"{type(exc).__name__}: {exc}"
            trial.set_user_attr("failed", self.last_failure)
            raise

    def _run(self, trial: Any) -> float:
        import optuna

        values = {name: suggest(trial, name, rng) for name, rng in self.ranges.items()}
        number = origin(trial)
        run_dir = self.out / TRIALS_DIR / f"trial{number}"
        trial.set_user_attr("run_dir", str(run_dir.relative_to(self.out)))
        spec = self.spec
        # A combination the plug-in refuses raises ConfigError: the trial fails, the study goes on.
        cfg = RunConfig.resolve(
            spec.optimizer,
            spec.space,
            benchmark=spec.benchmark,
            preset=spec.preset,
            overrides={**spec.settings(), **values},
            seed=spec.seed,
            device=spec.device,
        )
        trainer = Trainer(cfg, run_dir, self.table, self.data(cfg), meta={"tag": f"hpo_trial{number}"})
        extra = {"tag": f"hpo_trial{number}", "hpo_trial": trial.number, "tuned": values}
        results.write_json(run_dir / results.CONFIG_JSON, config_record(cfg, trainer, extra))
        reported: set[int] = set()

        def report(row: dict[str, Any]) -> None:
            # Rows a resumed trial already has are reported too, so the pruner sees every epoch.
            for r in trainer.rows:
                if r["epoch"] not in reported:
                    trial.report(valid_regret(r, self.best_valid), step=int(r["epoch"]) + 1)
                    reported.add(r["epoch"])
            # After the last epoch the trial is done: its final value counts, whatever the rung says.
            if row["epoch"] < trainer.epochs - 1 and trial.should_prune():
                trainer.mark("pruned", f"pruned by Hyperband after epoch {row['epoch']}")
                raise optuna.TrialPruned(f"after epoch {row['epoch']}")

        try:
            trainer.run(on_epoch=report)
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            trainer.mark("interrupted", "stopped by the user; rerun the same command to resume")
            raise
        except DivergedError as exc:
            trainer.mark("failed", str(exc))
            raise
        last = trainer.rows[-1]
        trial.set_user_attr("test_regret", _float(last.get("test_regret")))
        trial.set_user_attr("valid_error", _float(last["valid_error_mean"]))
        trial.set_user_attr("epochs", len(trainer.rows))
        return valid_regret(last, self.best_valid)


def _float(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


# ---- running a study -----------------------------------------------------------------------------
def run_worker(
    spec: HpoSpec,
    out: Path,
    trials: int,
    table_factory: TableFactory,
    data_factory: DataFactory,
    threads: int = 1,
) -> None:
    """Run trials of the study until it holds `trials` finished ones (counting those running elsewhere)."""
    import optuna
    import torch
    from optuna.trial import TrialState

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = table_factory()
    study = open_study(spec, out, search_epochs(spec))
    objective = Objective(spec, out, spec.ranges(), table, data_factory)
    busy = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)
    while len(study.get_trials(deepcopy=False, states=busy)) < trials:
        study.optimize(objective, n_trials=1, catch=(HarnessError, DivergedError), gc_after_trial=False)
        if objective.failures > MAX_FAILURES:
            raise HpoError(
                f"{objective.failures} trials failed in this process (last: {objective.last_failure}); "
                "narrow the ranges with --tune or fix settings with --set"
            )


def prepare(spec: HpoSpec, out: Path, table: Any) -> dict[str, Range]:
    """Validate everything and create the study (before any worker starts); returns the ranges."""
    import optuna

    ranges = spec.ranges()
    check_compatible(spec, out)
    Path(out).mkdir(parents=True, exist_ok=True)
    write_spec(spec, out, ranges, best_valid_error(table, spec.space))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(spec, out, search_epochs(spec))
    with _quiet_experimental():
        optuna.storages.fail_stale_trials(study)  # abandoned trials: failed and queued again
    n = requeue_interrupted(study)
    if n:
        log.info("%d interrupted trial(s) queued again", n)
    return ranges


def run_study(
    spec: HpoSpec,
    out: Path,
    trials: int,
    table_factory: TableFactory,
    data_factory: DataFactory,
    jobs: int = 1,
    threads: int = 1,
) -> Any:
    """Run the study to `trials` finished trials with `jobs` processes; returns the study."""
    out = Path(out)
    prepare(spec, out, table_factory())
    t0 = time.perf_counter()
    if jobs > 1:
        from joblib import Parallel, delayed

        Parallel(n_jobs=jobs)(
            delayed(run_worker)(spec, out, trials, table_factory, data_factory, threads) for _ in range(jobs)
        )
    else:
        run_worker(spec, out, trials, table_factory, data_factory, threads)
    log.info("study done in %.0f s: %s", time.perf_counter() - t0, counts(load(spec, out)))
    return load(spec, out)


def load(spec: HpoSpec, out: Path) -> Any:
    import optuna

    return optuna.load_study(study_name=study_name(spec), storage=storage(out))


# ---- reports ---------------------------------------------------------------------------------------
def trials_frame(study: Any) -> Any:
    """One row per trial: state, objective, final test regret, epochs run, run directory, settings."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        last_step = max(t.intermediate_values) if t.intermediate_values else None
        rows.append(
            {
                "trial": t.number,
                "state": t.state.name,
                "valid_regret": t.value if t.state.name == "COMPLETE" else None,
                "last_reported_valid_regret": t.intermediate_values.get(last_step) if last_step else None,
                "epochs_run": last_step,
                "test_regret": t.user_attrs.get("test_regret"),
                "continues_trial": t.user_attrs.get("resumes"),
                "run_dir": t.user_attrs.get("run_dir"),
                "seconds": t.duration.total_seconds() if t.duration is not None else None,
                "failed": t.user_attrs.get("failed")
                or ("interrupted" if t.user_attrs.get("interrupted") else None),
                **{f"param.{k}": v for k, v in t.params.items()},
            }
        )
    return pd.DataFrame(rows)


def set_line(values: Mapping[str, Any]) -> str:
    """`--set k=v --set k2=v2`: exact values (repr of floats round-trips), ready for bench.run."""
    return " ".join(f"--set {k}={_text(v)}" for k, v in values.items())


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return str(v).lower()
    return repr(v) if isinstance(v, float) else str(v)


def best_settings(spec: HpoSpec, study: Any) -> tuple[Any, str, str] | None:
    """(best trial, its --set line, the full bench.run command), or None before any trial completed."""
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    best = min(complete, key=lambda t: (t.value, t.number))
    line = set_line({**spec.fixed, **best.params})
    command = (
        f"python -m bench.run --optimizer {spec.optimizer} --space {spec.space} --benchmark {spec.benchmark} "
        f"--preset {spec.preset} --seeds {spec.seed} {line}"
    )
    return best, line, command


def write_reports(spec: HpoSpec, out: Path, study: Any) -> list[Path]:
    """trials.csv, best_settings.txt and the best-regret plot; returns the paths written."""
    out = Path(out)
    frame = trials_frame(study)
    paths = [out / TRIALS_CSV]
    results.atomic_write_text(paths[0], frame.to_csv(index=False, float_format="%.10g"))
    found = best_settings(spec, study)
    if found is not None:
        best, line, command = found
        text = (
            f"# best of {len(frame)} trials: trial {best.number}, final validation regret {best.value:.6g}"
            f" (test regret {best.user_attrs.get('test_regret')}), {spec.optimizer}, space {spec.space}, "
            f"{spec.benchmark}, preset {spec.preset}\n{line}\n{command}\n"
        )
        paths.append(out / BEST_TXT)
        results.atomic_write_text(paths[-1], text)
    paths.append(plot(spec, frame, out / f"{PLOT_STEM}.png"))
    return paths


def plot(spec: HpoSpec, frame: Any, path: Path) -> Path:
    """Best final validation regret so far against the trial number; pruned trials at their last report."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.0), layout="constrained")
    ax = fig.subplots()
    if len(frame):
        done = frame[frame["state"] == "COMPLETE"].sort_values("trial")
        pruned = frame[frame["state"] == "PRUNED"]
        ax.scatter(done["trial"], done["valid_regret"], s=18, color="#0072B2", label="complete trial")
        ax.scatter(pruned["trial"], pruned["last_reported_valid_regret"], s=18, facecolors="none",
                   edgecolors="#E69F00", label="pruned (last report)")  # fmt: skip
        if len(done):
            ax.step(
                done["trial"],
                done["valid_regret"].cummin(),
                where="post",
                color="#0072B2",
                label="best so far",
            )
        ax.legend(fontsize=8)
    ax.set_xlabel("trial")
    ax.set_ylabel("final validation regret")
    from bench.benchmarks import get_benchmark

    note = get_benchmark(spec.benchmark).caveat
    caveat = f" ({note})" if note else ""
    ax.set_title(f"HPO of {spec.optimizer}, space {spec.space}{caveat}", fontsize=9)
    ax.grid(alpha=0.3)
    fig.savefig(path, dpi=130)
    return path


def describe_ranges(ranges: Mapping[str, Range]) -> str:
    return ", ".join(f"{k} {r.describe()}" for k, r in ranges.items())


__all__ = [
    "HpoSpec",
    "TRAINER_RANGES",
    "best_settings",
    "describe_ranges",
    "run_study",
    "trials_frame",
    "write_reports",
]

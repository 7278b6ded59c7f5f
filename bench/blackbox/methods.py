"""The black-box NAS methods, one function each, registered by name in `METHODS`.

Each takes the oracle (which answers queries and counts the budget), the space's encoding, a random
generator of its own and its settings dataclass, and queries until the oracle's budget is spent.

- `rs`: random search over raw architectures (NAS-Bench-1Shot1's `random_search`).
- `re`: regularized (aging) evolution, Real et al. 2019, with NAS-Bench-1Shot1's defaults
  (optimizers/regularized_evolution/run_regularized_evolution.py: population 100, tournament sample 10
  drawn with replacement, mutation = identity, parent swap or op change with probability 1/3 each).
- `tpe`: Optuna's TPESampler over the categorical encoding, independent per parameter (the
  reference ran hyperopt's TPE, which is independent too).
- `bohb`: BOHB-style multi-fidelity: Optuna's multivariate TPE (BOHB models the parameters jointly)
  with Optuna's HyperbandPruner. The fidelity is the number of training repeats: neither table holds
  shorter trainings (the NB-101 reader keeps the 108-epoch records of nasbench_only108 only; digits trains
  one protocol), so the low fidelity is one repeat's validation accuracy (the cost of that repeat) and a
  promotion pays for the other repeats and reports the mean of all (successive halving with eta = 3
  over 1 -> 3 repeats). NAS-Bench-1Shot1 used the 4/12/36/108-epoch budgets of nasbench_full instead.
"""

from __future__ import annotations

import collections
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.blackbox.encoding import Encoding
from bench.blackbox.oracle import Evaluation, TabularOracle
from bench.blackbox.records import METHOD_TITLES
from bench.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass
class NoSettings:
    """A method without settings."""


@dataclass
class EvolutionSettings:
    population: int = 100  # NAS-Bench-1Shot1's --pop_size
    sample_size: int = 10  # its --sample_size (the tournament)

    def __post_init__(self) -> None:
        if self.population < 1 or self.sample_size < 1:
            raise ConfigError(
                f"--set population={self.population} sample_size={self.sample_size}: both must be >= 1"
            )


@dataclass
class TPESettings:
    n_startup_trials: int = 10  # random queries before TPE models anything (Optuna's default)

    def __post_init__(self) -> None:
        if self.n_startup_trials < 0:
            raise ConfigError(f"--set n_startup_trials={self.n_startup_trials}: must be >= 0")


@dataclass
class BOHBSettings(TPESettings):
    reduction_factor: int = 3  # eta of successive halving (BOHB's and NAS-Bench-1Shot1's)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reduction_factor < 2:
            raise ConfigError(f"--set reduction_factor={self.reduction_factor}: must be >= 2")


Runner = Callable[[TabularOracle, Encoding, np.random.Generator, Any], None]


@dataclass(frozen=True)
class Method:
    name: str
    Settings: type
    run: Runner

    @property
    def title(self) -> str:  # as figures call it
        return METHOD_TITLES[self.name]


# ---- the methods -------------------------------------------------------------------------------
def random_search(oracle: TabularOracle, enc: Encoding, rng: np.random.Generator, settings: Any) -> None:
    while not oracle.exhausted:
        oracle.query(enc.sample(rng))


def regularized_evolution(
    oracle: TabularOracle, enc: Encoding, rng: np.random.Generator, settings: EvolutionSettings
) -> None:
    """Aging evolution: a random population, then tournament -> mutate the winner -> drop the oldest."""
    population: collections.deque[Evaluation] = collections.deque()
    while len(population) < settings.population and not oracle.exhausted:
        population.append(oracle.query(enc.sample(rng)))
    while not oracle.exhausted:
        tournament = [population[int(rng.integers(len(population)))] for _ in range(settings.sample_size)]
        parent = max(tournament, key=lambda ev: ev.valid_acc)  # the first of equals wins
        population.append(oracle.query(enc.mutate(parent.arch, rng)))
        population.popleft()


def _study(name: str, sampler: Any, pruner: Any = None) -> Any:
    import optuna

    # A fixed study name: Optuna's Hyperband assigns brackets by hashing it with the trial number.
    return optuna.create_study(study_name=name, direction="maximize", sampler=sampler, pruner=pruner)


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31 - 1))


def tpe(oracle: TabularOracle, enc: Encoding, rng: np.random.Generator, settings: TPESettings) -> None:
    import optuna

    sampler = optuna.samplers.TPESampler(
        seed=_seed(rng), n_startup_trials=settings.n_startup_trials, multivariate=False
    )
    study = _study("tpe", sampler)
    while not oracle.exhausted:
        trial = study.ask()
        ev = oracle.query(enc.suggest(trial))
        study.tell(trial, ev.valid_acc)


def bohb(oracle: TabularOracle, enc: Encoding, rng: np.random.Generator, settings: BOHBSettings) -> None:
    """Multivariate TPE + Hyperband over training repeats (see the module docstring)."""
    import optuna
    from optuna.trial import TrialState

    # Every architecture of a table has the same number of repeats (NB-101 and digits: 3).
    first_choices = enc.decode({name: choices[0] for name, choices in enc.params.items()})
    repeats = oracle.n_repeats(first_choices)
    with warnings.catch_warnings():  # multivariate TPE is marked experimental in Optuna 4
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        sampler = optuna.samplers.TPESampler(
            seed=_seed(rng), n_startup_trials=settings.n_startup_trials, multivariate=True
        )
    pruner = optuna.pruners.HyperbandPruner(
        min_resource=1, max_resource=max(repeats, 1), reduction_factor=settings.reduction_factor
    )
    study = _study("bohb", sampler, pruner)
    while not oracle.exhausted:
        trial = study.ask()
        arch = enc.suggest(trial)
        low = oracle.query(arch)
        trial.report(low.valid_acc, step=1)
        if repeats == 1:
            study.tell(trial, low.valid_acc)
        elif oracle.exhausted or trial.should_prune():
            study.tell(trial, state=TrialState.PRUNED)
        else:
            full = oracle.observe(arch, range(repeats), paid=low.repeats)
            trial.report(full.valid_acc, step=repeats)
            study.tell(trial, full.valid_acc)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("rs", NoSettings, random_search),
        Method("re", EvolutionSettings, regularized_evolution),
        Method("tpe", TPESettings, tpe),
        Method("bohb", BOHBSettings, bohb),
    )
}

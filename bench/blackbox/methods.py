"""The black-box NAS methods, one function each, registered by name in `METHODS`.

Each takes the oracle (which answers queries and counts the budget), the space's encoding, a random
generator of its own and its settings dataclass, and queries until the oracle's budget is spent.

- `rs`: random search over raw architectures (NAS-Bench-1Shot1's `random_search`).
- `re`: regularized (aging) evolution, Real et al. 2019, with NAS-Bench-1Shot1's defaults
  (optimizers/regularized_evolution/run_regularized_evolution.py: population 100, tournament sample 10
  drawn with replacement, mutation = identity, parent swap or op change with probability 1/3 each).
- `tpe`: Optuna's TPESampler over the categorical encoding, independent per parameter (the
  reference ran hyperopt's TPE, which is independent too).
- `hb`: Hyperband (Li et al. 2018) as HpBandSter runs it, over the table's epoch budgets (see
  `hyperband`), with random configurations.
- `bohb`: the same Hyperband loop with BOHB's model-based proposals (see `TPEProposals`).
- `bohb-repeats`: a BOHB-style method for tables of ONE budget, with the number of training repeats as
  the fidelity: Optuna's multivariate TPE with Optuna's HyperbandPruner; the low fidelity is one repeat's
  validation accuracy (the cost of that repeat) and a promotion pays for the other repeats and reports
  the mean of all (successive halving with eta = 3 over 1 -> 3 repeats). Before tables held epoch budgets
  this was `bohb`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from bench.blackbox.encoding import Encoding
from bench.blackbox.oracle import Evaluation, TabularOracle
from bench.blackbox.records import METHOD_TITLES
from bench.errors import ConfigError
from bench.search.spaces import Architecture

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


def _check_reduction_factor(eta: int) -> None:
    if eta < 2:
        raise ConfigError(f"--set reduction_factor={eta}: must be >= 2")


@dataclass
class RepeatsBOHBSettings(TPESettings):
    reduction_factor: int = 3  # eta of successive halving (BOHB's and NAS-Bench-1Shot1's)

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_reduction_factor(self.reduction_factor)


@dataclass
class HyperbandSettings:
    reduction_factor: int = 3  # eta (HpBandSter's and NAS-Bench-1Shot1's)

    def __post_init__(self) -> None:
        _check_reduction_factor(self.reduction_factor)


@dataclass
class BOHBSettings(HyperbandSettings):
    """HpBandSter's BOHB defaults, except the model (Optuna's TPE, see `TPEProposals`)."""

    random_fraction: float = 1 / 3  # proposals drawn uniformly at random whatever the model
    min_points_in_model: int = 0  # a model needs twice this many observations; 0: parameters + 1
    num_samples: int = 64  # candidates the model scores per proposal (Optuna's n_ei_candidates)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.random_fraction <= 1.0:
            raise ConfigError(f"--set random_fraction={self.random_fraction}: must be in [0, 1]")
        if self.min_points_in_model < 0:
            raise ConfigError(f"--set min_points_in_model={self.min_points_in_model}: must be >= 0")
        if self.num_samples < 1:
            raise ConfigError(f"--set num_samples={self.num_samples}: must be >= 1")


Runner = Callable[[TabularOracle, Encoding, np.random.Generator, Any], None]


@dataclass(frozen=True)
class Method:
    name: str
    Settings: type
    run: Runner
    needs_budgets: bool = False  # queries several epoch budgets of the table

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


def bohb_repeats(
    oracle: TabularOracle, enc: Encoding, rng: np.random.Generator, settings: RepeatsBOHBSettings
) -> None:
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
    study = _study("bohb", sampler, pruner)  # its name before the rename: it seeds the brackets
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


# ---- Hyperband over epoch budgets ---------------------------------------------------------------
def bracket_schedule(budgets: Sequence[int], eta: int) -> list[list[tuple[int, int]]]:
    """Hyperband's brackets in the order they run, each a list of rungs (configurations, budget).

    HpBandSter's Hyperband.get_next_iteration with its budgets replaced by the table's ladder: with
    R = len(budgets) rungs, bracket s (= R-1, ..., 0) starts n0 = floor(R / (s+1)) * eta**s configurations
    on the (s+1)-th largest budget and keeps max(floor(n0 * eta**-i), 1) of them at rung i. HpBandSter
    derives the ladder from eta (max_budget * eta**-k); a table holds fixed budgets, so eta sets the
    counts only (NB-101's 4, 12, 36, 108 is the ladder HpBandSter makes for eta 3 from 4 to 108).
    """
    ladder = sorted(budgets)
    rungs = len(ladder)
    out = []
    for s in range(rungs - 1, -1, -1):
        n0 = (rungs // (s + 1)) * eta**s
        out.append([(max(n0 // eta**i, 1), ladder[rungs - 1 - s + i]) for i in range(s + 1)])
    return out


class Proposals(Protocol):
    """Where a Hyperband bracket's new configurations come from, and what it learns from results."""

    def propose(self) -> Architecture: ...

    def observe(self, ev: Evaluation) -> None: ...


@dataclass
class RandomProposals:
    enc: Encoding
    rng: np.random.Generator

    def propose(self) -> Architecture:
        return self.enc.sample(self.rng)

    def observe(self, ev: Evaluation) -> None:
        pass


def hyperband(oracle: TabularOracle, proposals: Proposals, eta: int) -> None:
    """Synchronous successive-halving brackets, cycling s = s_max..0 as HpBandSter does, until the
    oracle's queries are spent (the last bracket may stop part-way).

    A rung evaluates its configurations one after another, a new one proposed only when the previous
    result is in (HpBandSter with one worker). Each evaluation is one query at the rung's budget: one
    random repeat's accuracy, charged that repeat's training time at that budget (a promoted
    configuration trains again from scratch, as NB-101's budgets are separate trainings). The next rung
    keeps the best by validation accuracy (ties: the earlier), as HpBandSter's successive halving."""
    budgets = oracle.budget_ladder
    for bracket in itertools.cycle(bracket_schedule(budgets, eta)):
        candidates: list[Architecture] = []
        for rung, (n, budget) in enumerate(bracket):
            evaluated: list[Evaluation] = []
            for i in range(n):
                if oracle.exhausted:
                    return
                arch = proposals.propose() if rung == 0 else candidates[i]
                ev = oracle.query(arch, budget=budget)
                proposals.observe(ev)
                evaluated.append(ev)
            if rung + 1 < len(bracket):
                keep = bracket[rung + 1][0]
                order = sorted(range(len(evaluated)), key=lambda j: -evaluated[j].valid_acc)  # stable
                candidates = [evaluated[j].arch for j in order[:keep]]


def random_hyperband(
    oracle: TabularOracle, enc: Encoding, rng: np.random.Generator, settings: HyperbandSettings
) -> None:
    hyperband(oracle, RandomProposals(enc, rng), settings.reduction_factor)


class TPEProposals:
    """BOHB's proposals (Falkner et al. 2018, HpBandSter's BOHB config generator), with Optuna's
    multivariate TPE in place of HpBandSter's statsmodels KDEs.

    - One Optuna study per budget, fed every evaluation at that budget (`add_trial`, value = the
      validation accuracy the query returned).
    - A proposal is uniformly random with probability `random_fraction`, and whenever no budget has a
      model yet; otherwise the model of the LARGEST budget that has one proposes (study.ask(); that trial
      is then closed as FAIL, which TPE ignores: the evaluation enters the study of the budget it is
      run at, as an added trial).
    - A budget has a model once it holds 2 * min_points_in_model observations (default: parameters + 1
      per side): HpBandSter fits a good and a bad KDE, each of more points than parameters.
    - The "good" observations are Optuna's default share (the best 10 %, rounded up, at most 25), not
      HpBandSter's best 15 % (at least min_points_in_model): Optuna deprecates a custom split (`gamma`).
    - The model scores `num_samples` candidates drawn from the good density (Optuna's n_ei_candidates;
      HpBandSter's num_samples) and proposes the best ratio of good to bad density.
    Unlike HpBandSter, Optuna's Parzen estimators over categorical parameters add a prior weight
    instead of a minimum bandwidth; the method's random stream seeds every sampler and the random draws.
    """

    def __init__(self, enc: Encoding, rng: np.random.Generator, settings: BOHBSettings) -> None:
        import optuna

        self.enc = enc
        self.rng = rng
        self.settings = settings
        self.min_points = settings.min_points_in_model or len(enc.params) + 1
        self.distributions = {
            name: optuna.distributions.CategoricalDistribution(list(choices))
            for name, choices in enc.params.items()
        }
        self.studies: dict[int, Any] = {}

    def _study_of(self, budget: int) -> Any:
        import optuna

        if budget not in self.studies:
            with warnings.catch_warnings():  # multivariate TPE is marked experimental in Optuna 4
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                sampler = optuna.samplers.TPESampler(
                    seed=_seed(self.rng),
                    n_startup_trials=0,  # the model is used only once the budget has enough points
                    n_ei_candidates=self.settings.num_samples,
                    multivariate=True,
                )
            self.studies[budget] = _study(f"bohb-{budget}", sampler)
        return self.studies[budget]

    def _modelled_budget(self) -> int | None:
        """The largest budget with enough observations for a model; None when none has."""
        ready = [b for b, study in self.studies.items() if _observations(study) >= 2 * self.min_points]
        return max(ready) if ready else None

    def propose(self) -> Architecture:
        from optuna.trial import TrialState

        budget = self._modelled_budget()
        if budget is None or self.rng.random() < self.settings.random_fraction:
            return self.enc.sample(self.rng)
        study = self.studies[budget]
        trial = study.ask(self.distributions)
        arch = self.enc.decode(trial.params)
        study.tell(trial, state=TrialState.FAIL)  # a proposal only; see the class docstring
        return arch

    def observe(self, ev: Evaluation) -> None:
        import optuna

        study = self._study_of(ev.budget)
        trial = optuna.trial.create_trial(
            params=self.enc.encode(ev.arch), distributions=self.distributions, value=ev.valid_acc
        )
        study.add_trial(trial)


def _observations(study: Any) -> int:
    from optuna.trial import TrialState

    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


def model_based_hyperband(
    oracle: TabularOracle, enc: Encoding, rng: np.random.Generator, settings: BOHBSettings
) -> None:
    hyperband(oracle, TPEProposals(enc, rng, settings), settings.reduction_factor)


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method("rs", NoSettings, random_search),
        Method("re", EvolutionSettings, regularized_evolution),
        Method("tpe", TPESettings, tpe),
        Method("hb", HyperbandSettings, random_hyperband, needs_budgets=True),
        Method("bohb", BOHBSettings, model_based_hyperband, needs_budgets=True),
        Method("bohb-repeats", RepeatsBOHBSettings, bohb_repeats),
    )
}

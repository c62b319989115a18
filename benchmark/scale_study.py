"""The closed-rule study (issue 23 section 2): how the closed division's learning rate scales
with the ranks, decided by runs of the reference at global batches 64 and 512.

docs/closed-rule-study.md fixed, before any run, the candidate rules, the staged order they run
in, how each run is made and the rule that picks one; this module is that text as code. Each run
is a resumable campaign (`benchmark.campaign`, a `recipe.ScaleRecipe`): the recipe that set the
target in force, its N ranks emulated in one process, evaluated every interval and ended at its
first evaluation passing the target, at its budget or when it diverges.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Callable, Optional

from benchmark.campaign import divergence, first_pass, read_curve
from benchmark.recipe import (CAMPAIGNS, LINEAR, SQRT, STUDY, UNSCALED, ScaleRecipe, ScheduledRecipe,
                              interval_steps, lr_scale_factor, reproduction_samples)
from benchmark.recipe_study import curve_samples

BENCHMARK = "3dgan"
EVAL_SAMPLES = 5_000  # every run evaluates at the first step past each multiple of this
# Today's warm-up, 5 epochs, in epochs of the runs' training set (section "How each run is made", 5).
LINEAR_WARMUP_SAMPLES = 5 * CAMPAIGNS[BENCHMARK].train_events
SQRT_WARMUP_SAMPLES = 20_000
WARMUP_VARIANTS = (5_000, 50_000)  # stage 3
BUDGET_FACTORS = {LINEAR: 3, SQRT: 3, UNSCALED: 5}  # x T, the single-rank samples to target
SINGLE_RANK_BATCH = 8
STAGE_BATCHES = (64, 512)
REPRODUCTION_SEED = 2  # the pick's second seed at batch 8: the study's first run, T's, and batch 8's first RCP run
# Stage 4 ("Stage 4 and the reference convergence points, precisely"): each batch's seeds, in
# order, until RCP_RUNS of them converged (the rule holds there; they make its RCP) or did not.
RCP_SEEDS = {SINGLE_RANK_BATCH: (2, 3, 4, 5, 6), 64: (1, 2, 3, 4, 5), 512: (1, 2, 3, 4, 5)}
RCP_RUNS = 3


@dataclass(frozen=True)
class Candidate:
    """A learning-rate rule: how the peak grows with the ranks, reached by a linear warm-up."""

    scaling: str
    warmup_samples: int

    @property
    def name(self) -> str:
        default = next(c.warmup_samples for c in CANDIDATES if c.scaling == self.scaling)
        return self.scaling if self.warmup_samples == default else f"{self.scaling}-warmup{self.warmup_samples}"


# In the table's order, today's rule first: equal costs go to the one listed first.
CANDIDATES = (Candidate(LINEAR, LINEAR_WARMUP_SAMPLES), Candidate(SQRT, SQRT_WARMUP_SAMPLES),
              Candidate(UNSCALED, 0))


@dataclass(frozen=True)
class Run:
    candidate: Candidate
    global_batch: int
    seed: int


# T's run ("Revision" 2): at one rank every candidate is the same rule, so one run stands for all.
T_RUN = Run(CANDIDATES[0], SINGLE_RANK_BATCH, REPRODUCTION_SEED)


def describe(run: Run) -> str:
    if _is_t_run(run):
        return f"T's run: the pick at global batch {run.global_batch}, seed {run.seed}"
    return f"{run.candidate.name} at global batch {run.global_batch}, seed {run.seed}"


@dataclass(frozen=True)
class Outcome:
    """How a finished run ended: its samples to target, or for one that did not converge its
    budget (what it cost, and what the picking rule counts)."""

    samples: int
    converged: bool


@dataclass(frozen=True)
class Basis:
    """What every run is made from: the recipe study's pick (its campaign recipe and judged
    generator), the target in force, and T (None until T's run has passed it)."""

    recipe: ScheduledRecipe
    generator: str
    target: object  # quality.Thresholds
    samples_to_target: Optional[int]

    @property
    def limits(self) -> dict[str, float]:
        return self.target.limits


def basis() -> Basis:
    """The study's basis as it stands: the recipe study's pick, judged against the target in force
    (docs/closed-rule-study.md, "Revision"), with T once its run has passed; or a one-line error
    when the recipe study has not picked."""
    from dataclasses import replace

    from benchmark import quality
    from benchmark.recipe_study import final_verdict, gating_limits
    from reference_model.errors import InputError

    winner = final_verdict(gating_limits()).winner
    if winner is None:
        raise InputError("the closed-rule study runs the recipe study's pick, and the recipe study has not picked "
                         "yet (harness reference study --status)")
    arm, generator = winner
    start = Basis(STUDY[arm], generator, quality.load_thresholds(BENCHMARK), None)
    found = outcome(start, T_RUN)
    return replace(start, samples_to_target=found.samples) if found is not None and found.converged else start


def interval_samples(global_batch: int) -> int:
    """The evaluation interval at a global batch: the smallest multiple of it at or above EVAL_SAMPLES."""
    return interval_steps(EVAL_SAMPLES, global_batch) * global_batch


def scale_recipe(basis: Basis, run: Run) -> ScaleRecipe:
    """The recipe of one run: the pick's, at the run's emulated ranks, rule, interval and budget.
    Batch 8's seed 2 under any candidate is T's run, whose budget is a second seed's (it sets T)."""
    picked = basis.recipe
    if _is_t_run(run):
        run = T_RUN
    ranks, remainder = divmod(run.global_batch, picked.per_rank_batch)
    if remainder:
        raise ValueError(f"global batch {run.global_batch} is not a whole number of per-rank batches of "
                         f"{picked.per_rank_batch}")
    interval = interval_samples(run.global_batch)
    if run == T_RUN:
        budget_samples = reproduction_samples(picked.budget_samples)
    elif basis.samples_to_target is None:
        raise ValueError(f"{describe(run)}: its budget is a multiple of T, unknown until T's run has passed")
    else:
        budget_samples = BUDGET_FACTORS[run.candidate.scaling] * basis.samples_to_target
    budget = math.ceil(budget_samples / interval) * interval
    shared = {f.name: getattr(picked, f.name) for f in fields(ScheduledRecipe)}
    return ScaleRecipe(**{**shared, "warmup_epochs": 0, "eval_every_samples": interval, "budget_samples": budget,
                          "ema_horizon_samples": picked.ema_horizon_samples if basis.generator == "ema" else None},
                       emulated_ranks=ranks, lr_scaling=run.candidate.scaling,
                       warmup_samples=run.candidate.warmup_samples, candidate=run.candidate.name,
                       target=basis.target.version)


def outcome(basis: Basis, run: Run) -> Optional[Outcome]:
    """How `run` ended, or None while it has not (not started, or training)."""
    recipe = scale_recipe(basis, run)
    curve = read_curve(recipe.campaign_name, run.seed)
    if curve is None:
        return None
    passed = first_pass(curve, basis.limits, recipe.judged_generator)
    if passed is not None:
        return Outcome(passed, True)
    if divergence(curve) is not None or curve_samples(curve) >= recipe.budget_samples:
        return Outcome(recipe.budget_samples, False)
    return None


def _is_t_run(run: Run) -> bool:
    """Batch 8's seed 2, under whichever candidate: T's run."""
    return run.global_batch == SINGLE_RANK_BATCH and run.seed == REPRODUCTION_SEED


@dataclass(frozen=True)
class Plan:
    """Where the study stands: the next run to train (None when every stage is done), the stage
    it belongs to, and, once decided, the rule and the largest global batch it is closed for."""

    next_run: Optional[Run]
    stage: str
    rule: Optional[Candidate] = None
    cap: Optional[int] = None
    held: tuple[int, ...] = ()  # stage 4: the batches where RCP_RUNS of the rule's seeds converged
    problem: str = ""  # why the study cannot go on (the rule does not hold at one rank)


def plan(result: Callable[[Run], Optional[Outcome]]) -> Plan:
    """The staged order and the picking rule of docs/closed-rule-study.md, given each run's
    outcome so far (`result`; None: not finished). T's run comes first; stages 1-3 run seed 1 of
    each candidate."""
    found = result(T_RUN)
    if found is None:
        return Plan(T_RUN, "0, T: the pick at one rank")
    if not found.converged:
        return Plan(None, "stopped", problem=(
            f"T's run ({describe(T_RUN)}) did not reach the target in force within its {found.samples:,} samples: "
            "the pick does not reach it at one rank, which issue 22 must answer before the closed rule can be "
            "decided (docs/closed-rule-study.md, \"Revision\")"))
    samples_to_target = found.samples

    def pending(runs: list[Run], stage: str) -> Optional[Plan]:
        waiting = [run for run in runs if result(run) is None]
        return Plan(waiting[0], stage) if waiting else None

    def cost(candidate: Candidate, batches: tuple[int, ...]) -> float:
        return sum(result(Run(candidate, b, 1)).samples for b in batches) / samples_to_target

    small, large = STAGE_BATCHES
    if waiting := pending([Run(c, small, 1) for c in CANDIDATES], f"1, every candidate at {small}"):
        return waiting
    at_small = [c for c in CANDIDATES if result(Run(c, small, 1)).converged]
    if not at_small:
        rule, cap = CANDIDATES[0], SINGLE_RANK_BATCH  # every rule is the same rule at one rank
    else:
        if waiting := pending([Run(c, large, 1) for c in at_small], f"2, at {large} what converged at {small}"):
            return waiting
        standing = [c for c in at_small if result(Run(c, large, 1)).converged]
        if not standing:
            rule, cap = min(at_small, key=lambda c: cost(c, (small,))), small
        else:
            rule, cap = min(standing, key=lambda c: cost(c, STAGE_BATCHES)), large
            warming = [c for c in standing if c.scaling in (LINEAR, SQRT)]
            if warming:
                better = min(warming, key=lambda c: cost(c, STAGE_BATCHES))
                variants = [Candidate(better.scaling, w) for w in WARMUP_VARIANTS]
                stage = f"3, warm-up lengths of {better.name} at {large}"
                if waiting := pending([Run(v, large, 1) for v in variants], stage):
                    return waiting
                if rule == better:
                    own = result(Run(rule, large, 1)).samples
                    faster = [v for v in variants if (o := result(Run(v, large, 1))).converged and o.samples < own]
                    rule = min(faster, key=lambda v: result(Run(v, large, 1)).samples, default=rule)
    return _reference_convergence(result, rule, cap)


def _reference_convergence(result: Callable[[Run], Optional[Outcome]], rule: Candidate, cap: int) -> Plan:
    """Stage 4: batch by batch up to the cap, the rule's seeds until RCP_RUNS converged or did
    not. Where they did not, the cap falls to the largest batch below at which the rule held."""
    stage, held = f"4, reference convergence runs of {rule.name} up to {cap}", []
    for batch in (b for b in RCP_SEEDS if b <= cap):
        waiting, converged = seeds_at(result, rule, batch)
        if waiting is not None:
            return Plan(waiting, stage, rule, cap, tuple(held))
        if len(converged) < RCP_RUNS:
            if batch == SINGLE_RANK_BATCH:
                return Plan(None, "stopped", rule, cap, problem=(
                    f"{RCP_RUNS} of the rule's seeds at global batch {batch} did not reach the target in force "
                    "before as many did: the target does not reproduce at one rank, which issue 22 must answer "
                    "before the closed rule can be decided (docs/closed-rule-study.md, \"Stage 4\")"))
            return Plan(None, "done", rule, held[-1], tuple(held))
        held.append(batch)
    return Plan(None, "done", rule, cap, tuple(held))


def seeds_at(result: Callable[[Run], Optional[Outcome]], rule: Candidate,
             batch: int) -> tuple[Optional[Run], list[Run]]:
    """Stage 4 at one batch: the seed to run next (None once decided) and the runs that converged."""
    converged, failed = [], 0
    for seed in RCP_SEEDS[batch]:
        run = Run(rule, batch, seed)
        found = result(run)
        if found is None:
            return run, converged
        if found.converged:
            converged.append(run)
        else:
            failed += 1
        if RCP_RUNS in (len(converged), failed):
            break
    return None, converged


def current_plan(study_basis: Basis) -> Plan:
    return status(study_basis)[1]


def status(study_basis: Basis) -> tuple[list[list], Plan]:
    """Where the study stands: one row per run the plan has reached (batch, rule, seed, budget,
    samples trained, state) and the plan."""
    outcomes, result = _outcomes(study_basis)
    current = plan(result)
    return [_status_row(study_basis, run, found) for run, found in outcomes.items()], current


def _outcomes(study_basis: Basis) -> tuple[dict[Run, Optional[Outcome]], Callable[[Run], Optional[Outcome]]]:
    """Each run's outcome as the picking rule asks for it, its curve read once however often it
    asks; and the runs asked for so far."""
    outcomes: dict[Run, Optional[Outcome]] = {}

    def result(run: Run) -> Optional[Outcome]:
        if run not in outcomes:
            outcomes[run] = outcome(study_basis, run)
        return outcomes[run]

    return outcomes, result


def reference_runs(study_basis: Basis) -> list:
    """The reference convergence runs (`rcp.ReferenceRun`) once stage 4 is done: at each batch
    where the rule held, its converged seeds with the rule's hyper-parameters there. Before,
    a one-line error saying what is left."""
    from benchmark.rcp import ReferenceRun
    from reference_model.errors import InputError

    _, result = _outcomes(study_basis)
    current = plan(result)
    if current.problem:
        raise InputError(current.problem)
    if current.next_run is not None:
        raise InputError(f"the closed-rule study is at stage {current.stage}, next {describe(current.next_run)}; "
                         "the RCPs are written once stage 4 is done (harness reference scale-study --hours H)")
    runs = []
    for batch in current.held:
        hyperparameters = rcp_hyperparameters(scale_recipe(study_basis, Run(current.rule, batch, 1)))
        runs += [ReferenceRun(batch, hyperparameters, run.seed, result(run).samples)
                 for run in seeds_at(result, current.rule, batch)[1]]
    return runs


def rcp_hyperparameters(recipe: ScaleRecipe) -> dict:
    """What an RCP record says its runs were (its `Hyperparams`; the global batch is added by
    `rcp.rcp_records`). At one rank every rule is the same rule: no warm-up to a higher peak."""
    from dataclasses import asdict

    factor = lr_scale_factor(recipe.emulated_ranks, recipe.lr_scaling)
    return {"opt_name": "rmsprop", "opt_base_learning_rate": recipe.learning_rate * factor,
            "opt_learning_rate_scaling": recipe.lr_scaling,
            "opt_learning_rate_warmup_samples": recipe.warmup_samples if factor > 1 else 0,
            "opt_learning_rate_decay": None if recipe.lr_decay is None else asdict(recipe.lr_decay),
            "local_batch_size": recipe.per_rank_batch, "eval_every_samples": recipe.eval_every_samples,
            "ema_horizon_samples": recipe.ema_horizon_samples, "precision": recipe.precision,
            "quality_thresholds": recipe.target}


def _status_row(study_basis: Basis, run: Run, found: Optional[Outcome]) -> list:
    recipe = scale_recipe(study_basis, run)
    curve = read_curve(recipe.campaign_name, run.seed)
    trained = curve_samples(curve)
    state = ("not started" if curve is None and found is None else "training" if found is None
             else f"converged at {found.samples:,}" if found.converged
             else "diverged" if curve is not None and divergence(curve) else "budget spent, not converged")
    return [run.global_batch, run.candidate.name, run.seed, f"{recipe.budget_samples:,}", f"{trained:,}", state]

"""The closed recipe of each benchmark, and of its reference training campaign, in one place.

MLPerf HPC keeps a benchmark's recipe in one config (CosmoFlow's `configs/cosmo.yaml`); this is
ours. It is Python rather than YAML because everything that reads it is Python: the trainer's
and the CLI's defaults, the campaign, and the tests that hold the MLPerf compliance rules
(`benchmark/compliance/*.yaml`, literal values the checker cannot import) to it. As Python the
values are typed and frozen, and the model's own hyper-parameters are read from their home,
`reference_model/specs.py` (the frozen model trains with them outside any benchmark too),
instead of being copied here.

What is tunable in the closed division (rules.md section 4) appears as a default and its
limits; what is frozen (section 3) appears once and is not a choice.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import ClassVar, Optional

from benchmark.vocabulary import FLOAT32, MIXED_BFLOAT16, TRAINING_PRECISIONS
from reference_model.specs import BENCHMARKS, get_spec

MIN_PER_RANK_BATCH = 8  # the source slides' per-worker batch


# How the peak rate grows with the ranks (docs/closed-rule-study.md): the closed division's is
# linear; the square-root rule and the unscaled rate are the candidates its study compares.
LINEAR, SQRT, UNSCALED = "linear", "sqrt", "unscaled"
LR_SCALINGS = (LINEAR, SQRT, UNSCALED)


def lr_scale_factor(ranks: int, scaling: str = LINEAR) -> float:
    """The peak rate of `ranks` ranks over the base rate under `scaling`: ranks, sqrt(ranks) or 1
    (MLPerf's opt_learning_rate_warmup_factor)."""
    factors = {LINEAR: ranks, SQRT: math.sqrt(ranks), UNSCALED: 1}
    if scaling not in factors:
        raise ValueError(f"learning-rate scaling {scaling!r}: one of {', '.join(LR_SCALINGS)}")
    return factors[scaling]


def interval_steps(every_samples: int, global_batch: int) -> int:
    """Steps between evaluations every `every_samples`: whole global batches, rounded up (an
    evaluation falls between steps)."""
    return -(-every_samples // global_batch)


def peak_learning_rate(base_lr: float, ranks: int, scaling: str = LINEAR) -> float:
    """The peak rate of `ranks` ranks under `scaling`."""
    return base_lr * lr_scale_factor(ranks, scaling)


@dataclass(frozen=True)
class LearningRateDecay:
    """A cosine from the peak rate down to `final_factor` x the peak between two sample counts
    (flat before, held after): MLPerf HPC's references decay to about a tenth the same way."""

    start_samples: int
    end_samples: int
    final_factor: float

    def factor(self, samples: int) -> float:
        """The multiplier of the peak rate after `samples` training samples."""
        if samples <= self.start_samples:
            return 1.0
        progress = min(1.0, (samples - self.start_samples) / (self.end_samples - self.start_samples))
        return self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))


@dataclass(frozen=True)
class BenchmarkRecipe:
    """The closed division of one benchmark: frozen rules, tunable defaults and their limits."""

    benchmark: str
    base_learning_rate: float  # RMSprop per rank; the peak is this x ranks (frozen)
    max_per_rank_batch: int  # the single-process reference batch
    min_per_rank_batch: int = MIN_PER_RANK_BATCH
    per_rank_batch: int = MIN_PER_RANK_BATCH  # default, as the slides trained
    warmup_epochs: int = 5  # default length of the linear warm-up (tunable; the slides' 5)
    precision: str = FLOAT32  # default training precision
    precisions: tuple[str, ...] = TRAINING_PRECISIONS  # allowed training precisions
    max_epochs: int = 30  # default upper bound on epochs
    eval_every_samples: Optional[int] = None  # None: at the end of every epoch (the closed rule)
    train_fraction: float = 0.9  # share of the sorted files trained on; the rest is held out (the originals')


def _closed_recipe(benchmark: str) -> BenchmarkRecipe:
    spec = get_spec(benchmark)
    return BenchmarkRecipe(benchmark=benchmark, base_learning_rate=spec.learning_rate,
                           max_per_rank_batch=spec.reference_batch_size)


RECIPES: dict[str, BenchmarkRecipe] = {benchmark: _closed_recipe(benchmark) for benchmark in BENCHMARKS}
DEFAULT_BENCHMARK = "3dgan"
# Argument and TrainConfig defaults are named before the benchmark is known, so they read these;
# tests/benchmark/test_recipe.py fails if a benchmark's defaults or learning rate depart from them.
DEFAULTS = RECIPES[DEFAULT_BENCHMARK]


def get_recipe(benchmark: str) -> BenchmarkRecipe:
    get_spec(benchmark)  # an unknown name fails with the list of benchmarks
    return RECIPES[benchmark]


@dataclass(frozen=True)
class CampaignRecipe:
    """The closed recipe of a reference campaign; fixed for the whole campaign once started
    (its curve in benchmark/convergence/ records it and refuses another)."""

    benchmark: str
    precision: str
    per_rank_batch: int
    learning_rate: float
    warmup_epochs: int
    eval_every_samples: int
    budget_samples: int
    train_events: int
    train_data_seed: int
    heldout_events: int
    heldout_data_seed: int
    events_per_file: int = 10_000
    smoke: bool = False  # tests only: the smoke target instead of the benchmark's
    # A seed other than the reference's reproduces the reference's target in a larger budget.
    reproduces: ClassVar[bool] = True

    @property
    def campaign_name(self) -> str:
        """What names the campaign's curve and state files (with the seed)."""
        return self.benchmark

    @property
    def global_batch(self) -> int:
        """Samples per optimiser update."""
        return self.per_rank_batch

    def train_options(self) -> dict:
        """The trainer's settings (`benchmark.trainer.TrainConfig`) beyond those every campaign sets."""
        return {}

    @property
    def epochs(self) -> int:
        """Evaluation intervals in the budget (one trainer epoch each)."""
        return -(-self.budget_samples // self.eval_every_samples)

    @property
    def reproduction_samples(self) -> int:
        return reproduction_samples(self.budget_samples)

    @property
    def reproduction_epochs(self) -> int:
        return -(-self.reproduction_samples // self.eval_every_samples)

    @property
    def steps_per_interval(self) -> int:
        return self.eval_every_samples // self.global_batch


def reproduction_samples(budget_samples: int) -> int:
    """What a second seed may train to reach the target the reference seed set."""
    return int(REPRODUCTION_FACTOR * budget_samples)


# Fixed up front (benchmark/thresholds/CALIBRATION.md, "v2"); never edited once a campaign started.
REPRODUCTION_FACTOR = 1.5  # a second seed must reach the reference's target within 1.5 budgets
CAMPAIGNS: dict[str, CampaignRecipe] = {
    "3dgan": CampaignRecipe(benchmark="3dgan", precision=MIXED_BFLOAT16, per_rank_batch=8,
                            learning_rate=RECIPES["3dgan"].base_learning_rate, warmup_epochs=0,
                            eval_every_samples=5_000, budget_samples=300_000, train_events=200_000,
                            train_data_seed=1001, heldout_events=15_000, heldout_data_seed=2001),
}


@dataclass(frozen=True)
class ScheduledRecipe(CampaignRecipe):
    """A campaign recipe that may decay its rate (`lr_decay`) and keep a moving average of the
    generator over `ema_horizon_samples` (None: none), judged beside the generator itself."""

    lr_decay: Optional[LearningRateDecay] = None
    ema_horizon_samples: Optional[int] = None

    @property
    def ema_decay(self) -> Optional[float]:
        """Per-step decay whose horizon is `ema_horizon_samples` whatever the batch; None without one."""
        if self.ema_horizon_samples is None:
            return None
        return 1.0 - self.global_batch / self.ema_horizon_samples

    def train_options(self) -> dict:
        return {"lr_decay": self.lr_decay, "ema_decay": self.ema_decay}


@dataclass(frozen=True)
class StudyRecipe(ScheduledRecipe):
    """One arm of the reference-recipe study (issue 22; the candidates and the rule that picks one
    are in benchmark/thresholds/CALIBRATION.md, "v3 recipe study", fixed before any arm trained).

    Every arm keeps a moving average of the generator over `ema_horizon_samples` and is judged
    with and without it. An arm with `branch_from` starts from that arm's state at
    `lr_decay.start_samples`, where the two recipes part: the samples before are shared, not re-run.
    """

    arm: str = ""
    ema_horizon_samples: Optional[int] = 20_000
    branch_from: Optional[str] = None

    @property
    def campaign_name(self) -> str:
        return f"{self.benchmark}-study-{self.arm}"

    @property
    def branch_samples(self) -> int:
        return self.lr_decay.start_samples if self.branch_from and self.lr_decay else 0


STUDY_BUDGET_SAMPLES = 200_000
STUDY_DECAY_START_SAMPLES = 100_000  # where seed 1's v2 curve had flattened (issue 22)
_STUDY_BASE = replace(CAMPAIGNS["3dgan"], budget_samples=STUDY_BUDGET_SAMPLES)
STUDY: dict[str, StudyRecipe] = {
    "constant": StudyRecipe(**asdict(_STUDY_BASE), arm="constant"),
    "cosine": StudyRecipe(**asdict(_STUDY_BASE), arm="cosine", branch_from="constant",
                          lr_decay=LearningRateDecay(STUDY_DECAY_START_SAMPLES, STUDY_BUDGET_SAMPLES, 0.1)),
    # the original's batch; 40 steps (5,120 samples) between evaluations
    "batch128": StudyRecipe(**{**asdict(_STUDY_BASE), "per_rank_batch": 128, "eval_every_samples": 5_120},
                            arm="batch128"),
}


# The variable-angle reference campaign (benchmark/thresholds/CALIBRATION.md, "3dgan-angle: the
# campaign's recipe, budget and target rule", fixed 2026-12-04 before any angle curve): the arm
# and generator the fixed study picks, its schedules scaled to this budget, on the angle model's
# own rate and the stand-in angle data of these sizes and seeds.
ANGLE_BENCHMARK = "3dgan-angle"
ANGLE_BUDGET_SAMPLES = 100_000
ANGLE_DATA = {"train_events": 100_000, "train_data_seed": 1101, "heldout_events": 7_000, "heldout_data_seed": 2101}


@dataclass(frozen=True)
class ReferenceData:
    """The stand-in data set a benchmark's reference campaigns train and evaluate on: a training
    set and a held-out set, each regenerated from its seed. The target and the reference
    convergence points were measured on it, so a closed time-to-accuracy run trains and is
    judged on it too (`harness run --mode tta` without --data makes it once)."""

    benchmark: str
    train_events: int
    train_data_seed: int
    heldout_events: int
    heldout_data_seed: int
    events_per_file: int = CampaignRecipe.events_per_file

    @property
    def recipes(self) -> tuple[str, str]:
        """The training and held-out sets' recipes as their markers record them, and as a run's
        log names its data (`reference_model.simulator.standin_recipe`)."""
        from reference_model.simulator import standin_recipe

        geometry = get_spec(self.benchmark).geometry
        return (standin_recipe(self.train_events, geometry, self.train_data_seed, self.events_per_file),
                standin_recipe(self.heldout_events, geometry, self.heldout_data_seed, self.events_per_file))


def reference_data(benchmark: str) -> ReferenceData:
    """The reference data set of `benchmark` (`CAMPAIGNS`' for 3dgan, `ANGLE_DATA` for 3dgan-angle)."""
    get_spec(benchmark)  # an unknown name fails with the list of benchmarks
    if benchmark == ANGLE_BENCHMARK:
        return ReferenceData(benchmark, **ANGLE_DATA)
    campaign = CAMPAIGNS[benchmark]
    return ReferenceData(benchmark, campaign.train_events, campaign.train_data_seed, campaign.heldout_events,
                         campaign.heldout_data_seed, campaign.events_per_file)


def angle_campaign(arm: str, generator: str) -> ScheduledRecipe:
    """The angle campaign's recipe once the fixed study has picked (`arm`, "raw" | "ema"): the
    arm's batch, precision, warm-up and evaluation interval (the budget is the last evaluation
    within ANGLE_BUDGET_SAMPLES: 97,280 at the batch-128 arm's 5,120); its rate decay scaled from
    the study's budget to the angle one (a decay from 100,000 to 200,000 runs from 50,000 to
    100,000); a moving average over the same horizon in samples only if the pick is the moving
    average."""
    if generator not in ("raw", "ema"):
        raise ValueError(f"generator {generator!r}: 'raw' or 'ema'")
    picked = STUDY[arm]
    scale = ANGLE_BUDGET_SAMPLES / picked.budget_samples
    decay = None if picked.lr_decay is None else replace(
        picked.lr_decay, start_samples=round(picked.lr_decay.start_samples * scale),
        end_samples=round(picked.lr_decay.end_samples * scale))
    return ScheduledRecipe(benchmark=ANGLE_BENCHMARK, precision=picked.precision,
                           per_rank_batch=picked.per_rank_batch,
                           learning_rate=RECIPES[ANGLE_BENCHMARK].base_learning_rate,
                           warmup_epochs=picked.warmup_epochs, eval_every_samples=picked.eval_every_samples,
                           budget_samples=ANGLE_BUDGET_SAMPLES // picked.eval_every_samples * picked.eval_every_samples,
                           **ANGLE_DATA, lr_decay=decay,
                           ema_horizon_samples=picked.ema_horizon_samples if generator == "ema" else None)


@dataclass(frozen=True)
class ScaleRecipe(ScheduledRecipe):
    """One run of the closed-rule study (issue 23; docs/closed-rule-study.md, fixed before any
    run): the recipe that set the target in force, trained as `emulated_ranks` ranks of the same
    per-rank batch under the candidate rule `candidate` (how the peak rate grows with the ranks,
    and the warm-up in samples), judged against that target (`target`) until it passes, diverges
    or spends its budget. Every seed has the same budget: none of them reproduces another."""

    emulated_ranks: int = 1
    lr_scaling: str = LINEAR
    warmup_samples: int = 0
    candidate: str = ""
    target: str = ""
    reproduces: ClassVar[bool] = False

    @property
    def campaign_name(self) -> str:
        return f"{self.benchmark}-scale-b{self.global_batch}-{self.candidate}"

    @property
    def global_batch(self) -> int:
        return self.per_rank_batch * self.emulated_ranks

    @property
    def judged_generator(self) -> str:
        """"ema" when the recipe judges its generator's moving average, else "raw"."""
        return "raw" if self.ema_horizon_samples is None else "ema"

    def train_options(self) -> dict:
        return {**super().train_options(), "emulated_ranks": self.emulated_ranks,
                "lr_scaling": self.lr_scaling, "warmup_samples": self.warmup_samples}

"""The background slot's queue: which long job runs next, read from the committed state.

The project gives the 2 cores one campaign at a time and queues the rest. This is that queue
as code, in the order the issues set: the recipe study, then v3 (its target steps, its second
seed, its promotion and ship), then the angle campaign (the same four), then the closed-rule
study, then the first time-to-accuracy results. Each job names the jobs it needs done first (the
angle campaign and the closed-rule study need only the study's pick: the closed-rule study runs
against the target in force, docs/closed-rule-study.md "Revision").
`harness reference queue --hours H` trains the first job in that order that is ready and whose
needs are done, and goes on to the next such job when one ends mid-session. A step that needs a
person (a promotion and a ship are committed decisions) or is blocked (a target that does not
hold, a seed that did not reproduce) holds back only the jobs that need it, and the queue says
which, with the command, in one line.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Optional

DONE, READY, FOREGROUND, BLOCKED = "done", "ready", "foreground", "blocked"
WAITING = "queued"  # a job whose needs are not all done; its own state is not read
FIXED, ANGLE = "3dgan", "3dgan-angle"


@dataclass(frozen=True)
class JobState:
    kind: str  # DONE | READY (the queue trains it) | FOREGROUND (a person runs `command`) | BLOCKED | WAITING
    detail: str = ""
    command: str = ""  # how to run the step by hand


@dataclass(frozen=True)
class Settings:
    """What a background job needs besides its hours."""

    campaign_data: Path
    holdtest_data: Path
    threads: int = 0


@dataclass(frozen=True)
class Job:
    name: str
    state: Callable[[], JobState]
    run: Optional[Callable[[float, Settings], None]] = None  # trains for up to the hours; FOREGROUND: None
    needs: tuple[str, ...] = ()  # the jobs (by name) that must be done before this one starts



def queue_states(jobs: list[Job]) -> list[tuple[Job, JobState]]:
    """Every job with its state, in order; a job whose needs are not all done is WAITING, "after"
    the first of them that is not (its own state is not read: it may need what they make)."""
    states: dict[str, JobState] = {}
    for job in jobs:
        unmet = [name for name in job.needs if states[name].kind != DONE]
        states[job.name] = JobState(WAITING, f"after {unmet[0]}") if unmet else job.state()
    return [(job, states[job.name]) for job in jobs]


def next_trainable(listed: list[tuple[Job, JobState]]) -> Optional[tuple[Job, JobState]]:
    """The first READY job (its needs done), or None."""
    return next(((job, state) for job, state in listed if state.kind == READY), None)


def held_up(listed: list[tuple[Job, JobState]]) -> list[tuple[Job, JobState]]:
    """The jobs waiting for a person: FOREGROUND or BLOCKED, their needs done."""
    return [(job, state) for job, state in listed if state.kind in (FOREGROUND, BLOCKED)]


def run_queue(jobs: list[Job], hours: float, settings: Settings) -> JobState:
    """Train the queue's jobs for `hours`: the first READY one whose needs are done, then the next,
    while time is left. Stops when no job can train (returning the first one waiting for a person,
    or DONE when every job is), or when a job is still open after its run (time up, or SIGTERM:
    returning its READY state)."""
    deadline = time.monotonic() + hours * 3600.0
    while True:
        listed = queue_states(jobs)
        trainable, waiting = next_trainable(listed), held_up(listed)
        if trainable is None:
            return waiting[0][1] if waiting else JobState(DONE, "every queued job is done")
        if deadline <= time.monotonic():
            return trainable[1]
        job, state = trainable
        print(f"[queue] {job.name}: {state.detail}", flush=True)
        job.run((deadline - time.monotonic()) / 3600.0, settings)
        after = job.state()
        if after.kind == READY:
            return after


# ------------------------------------------------------------------------------------------------
# The jobs
# ------------------------------------------------------------------------------------------------
def _limits() -> dict[str, float]:
    from benchmark.recipe_study import gating_limits

    return gating_limits()


def _target_name(benchmark: str) -> str:
    from benchmark import quality

    return quality.load_thresholds(benchmark).name


def _released(benchmark: str) -> bool:
    """Is the benchmark's hold-tested target (3dgan's v3, the angle v2) the one in force?"""
    from benchmark.target_v3 import rule_for

    return _target_name(benchmark) == rule_for(benchmark).release


def _winner() -> tuple[str, str]:
    from benchmark.recipe_study import final_verdict

    return final_verdict(_limits()).winner


RATE_SESSIONS = 3  # a campaign's rate for its hours left: the median over its last sessions


def hours_left(curve: Optional[dict], samples: int) -> str:
    """", about H h at R samples/s" for `samples` more at the campaign's recent rate (its last
    RATE_SESSIONS sessions, wall time with evaluations); "" when no session recorded one."""
    import statistics

    rates = [s["samples_per_second"] for s in (curve or {}).get("sessions", [])[-RATE_SESSIONS:]
             if s.get("samples_per_second")]
    if not rates or samples <= 0:
        return ""
    rate = statistics.median(rates)
    return f", about {samples / rate / 3600:.1f} h at {rate:.1f} samples/s"


def _study_state() -> JobState:
    from benchmark import recipe_study

    segment = recipe_study.next_segment(_limits())
    if segment is None:
        return JobState(DONE, f"picked {'/'.join(_winner())}")
    arm, until = segment
    trained = recipe_study.arm_samples(arm)
    return JobState(READY, f"the {arm} arm from {trained:,} to {until:,} samples"
                           f"{hours_left(recipe_study.read_arm(arm), until - trained)}",
                    "harness reference study --hours H")


def _train_study(hours: float, settings: Settings) -> None:
    from harness.commands.study import train_study

    train_study(hours, settings.campaign_data, settings.threads)


def _target_state(benchmark: str) -> JobState:
    from benchmark.hold_test import read_record
    from benchmark.v3_candidate import hold_record, reference_path

    command = f"harness reference target-v3 --benchmark {benchmark} --until hold"
    if _released(benchmark):
        return JobState(DONE, f"{_target_name(benchmark)} is in force", command)
    held = read_record(hold_record(reference_path(benchmark), benchmark))
    if held is not None and held.holds:
        return JobState(DONE, held.summary(), command)
    if held is not None and held.complete:
        return JobState(BLOCKED, f"the release candidate does not hold ({held.summary()}); the rule never "
                                 "loosens a limit: record the shortfall in CALIBRATION.md", command)
    return JobState(READY, "export, calibration seeds, release candidate, validation seeds", command)


def _run_target(benchmark: str) -> Callable[[float, Settings], None]:
    # Runs to its end, not bounded by the hours: 40 fresh sets of 13,000 events, about 75 s each on
    # Zen 4 (runs/holdtest-v2-shipped.log: 20 in 24.5 min), each seed's verdict kept as it is made.
    def run(hours: float, settings: Settings) -> None:
        from harness.commands.target_v3 import run_target_v3

        run_target_v3(argparse.Namespace(benchmark=benchmark, until="hold", status=False,
                                         data_dir=str(settings.holdtest_data)))
    return run


def _second_seed_recipe(benchmark: str):
    from benchmark.recipe import STUDY

    if benchmark == FIXED:
        return STUDY[_winner()[0]]
    from benchmark.recipe_study import angle_recipe

    return angle_recipe(_limits())


def _arm_flag(benchmark: str) -> str:
    """The --arm that names the study's pick in a command about 3dgan's v3 (the angle campaign has none)."""
    return f" --arm {_winner()[0]}" if benchmark == FIXED else ""


def _second_seed_state(benchmark: str) -> JobState:
    from benchmark.campaign import read_curve, reproduction_target
    from benchmark.recipe_study import curve_samples
    from benchmark.reference_target import judge_reproduction

    command = f"harness reference train --benchmark {benchmark}{_arm_flag(benchmark)} --seed 2 --hours H"
    if _released(benchmark):
        return JobState(DONE, f"{_target_name(benchmark)} is in force", command)
    recipe = _second_seed_recipe(benchmark)
    candidate = reproduction_target(benchmark, asdict(recipe))
    if candidate is None:
        return JobState(BLOCKED, "no release candidate of this recipe to reproduce", command)
    curve = read_curve(recipe.campaign_name, 2)
    if curve is None or not curve["points"]:
        return JobState(READY, f"seed 2 from scratch, to {candidate.name}", command)
    verdict = judge_reproduction(candidate, curve)
    if verdict.reproduced:
        return JobState(DONE, f"reproduced {candidate.name} at {verdict.first_pass:,} samples", command)
    if verdict.exhausted:
        return JobState(BLOCKED, f"seed 2 did not reproduce {candidate.name} within {verdict.within_samples:,} "
                                 "samples: the candidate is not promoted (CALIBRATION.md)", command)
    trained = curve_samples(curve)
    return JobState(READY, f"seed 2 at {trained:,} of {verdict.within_samples:,} samples (last evaluated at "
                           f"{verdict.trained:,}){hours_left(curve, verdict.within_samples - trained)}", command)


def _run_second_seed(benchmark: str) -> Callable[[float, Settings], None]:
    def run(hours: float, settings: Settings) -> None:
        from harness.commands.reference import train_session

        train_session(_second_seed_recipe(benchmark), 2, hours, settings.campaign_data, settings.threads)
    return run


def _release_state(benchmark: str) -> JobState:
    """Promotion and ship: done when the released target is in force and the shipped reference
    was validated against it."""
    from benchmark.quality import LOGGED_HASH_SEPARATOR
    from benchmark.target_v3 import rule_for
    from reference_model.checkpoint import frozen_checkpoint, read_card

    release = rule_for(benchmark).release
    arm = _arm_flag(benchmark)
    command = (f"harness reference target-v3 --benchmark {benchmark} (its distortions table, for CALIBRATION.md) && "
               f"harness reference reproduce --benchmark {benchmark}{arm} --seed 2 --promote && "
               f"harness reference ship --benchmark {benchmark} --generator v3")
    weights = frozen_checkpoint(benchmark)
    shipped = read_card(weights)["validation"]["thresholds"] if weights.is_file() else ""
    if _released(benchmark) and shipped.split(LOGGED_HASH_SEPARATOR)[0] == release:
        return JobState(DONE, f"{release} in force, its reference shipped", command)
    return JobState(FOREGROUND, f"promote {release} and ship its reference (committed decisions)", command)


def _angle_state() -> JobState:
    from benchmark.recipe_study import angle_recipe, curve_samples
    from benchmark.campaign import read_curve

    recipe = angle_recipe(_limits())
    curve = read_curve(recipe.campaign_name, 1)
    trained = curve_samples(curve)
    command = f"harness reference train --benchmark {ANGLE} --hours H"
    if trained >= recipe.budget_samples:
        return JobState(DONE, f"trained its {recipe.budget_samples:,} samples", command)
    return JobState(READY, f"{trained:,} of {recipe.budget_samples:,} samples"
                           f"{hours_left(curve, recipe.budget_samples - trained)}", command)


def _train_angle(hours: float, settings: Settings) -> None:
    from benchmark.recipe_study import angle_recipe
    from harness.commands.reference import train_session

    train_session(angle_recipe(_limits()), 1, hours, settings.campaign_data, settings.threads)


def _closed_rule_state() -> JobState:
    from benchmark import scale_study
    from reference_model.errors import InputError

    command = "harness reference scale-study --hours H"
    try:
        plan = scale_study.current_plan(scale_study.basis())
    except InputError as err:
        return JobState(BLOCKED, str(err), command)
    if plan.problem:
        return JobState(BLOCKED, plan.problem, command)
    if plan.next_run is None:
        standing = f"the rule left standing: {plan.rule.name} up to global batch {plan.cap:,}"
        if set(plan.held) - _rcp_batches(scale_study.BENCHMARK):
            return JobState(FOREGROUND, f"{standing}; write its RCPs, then rules.md section 3 follows by hand",
                            "harness reference scale-study --write-rcps")
        return JobState(DONE, standing, command)
    return JobState(READY, f"{scale_study.describe(plan.next_run)} (stage {plan.stage})", command)


def _rcp_batches(benchmark: str) -> set[int]:
    from benchmark.rcp import load_rcps

    return {record["BS"] for record in load_rcps(benchmark).values()}


def _train_closed_rule(hours: float, settings: Settings) -> None:
    from harness.commands.scale_study import train_runs

    train_runs(hours, settings.campaign_data, settings.threads)


def _first_results_state() -> JobState:
    from harness import first_results
    from harness.reference_runs import differences
    from reference_model.errors import InputError

    command = "harness reference queue --hours H (the job never starts a run the hours cannot finish)"
    try:
        found = first_results.reference()
    except InputError as err:
        return JobState(BLOCKED, str(err), command)
    seed = first_results.next_seed()
    request = first_results.closed_request(seed, None, found.recipe.precision)
    differing = differences(request, found.recipe, seed)
    if differing:
        return JobState(FOREGROUND, "the closed defaults do not yet train as the batch-8 RCP runs did ("
                                    + "; ".join(differing) + "): land the closed-rule decision first",
                        "rules.md section 3, benchmark/recipe.py, the compliance rules and harness run --help")
    ended, _ = first_results.runs()
    if len(ended) >= first_results.RUNS:
        return JobState(DONE, f"{len(ended)} runs: harness summarize {first_results.RESULTS_ROOT}", command)
    need = found.hours_needed()
    return JobState(READY, f"run {len(ended) + 1} of {first_results.RUNS} (seed {seed}), about "
                           f"{'?' if need is None else f'{need:.1f}'} h uninterrupted", command)


def _train_first_results(hours: float, settings: Settings) -> None:
    from harness import first_results

    first_results.train_runs(hours, settings.campaign_data)


def background_queue() -> list[Job]:
    """The queue in its order, each job with what it needs done first (module doc)."""
    study, v3_target, v3_seed, v3_release = ("recipe study (issue 22)", "3dgan v3 target", "3dgan v3 second seed",
                                             "3dgan v3 promotion and ship")
    angle, angle_target, angle_seed = ("3dgan-angle campaign (issue 25)", "3dgan-angle target",
                                       "3dgan-angle second seed")
    closed_rule = "closed-rule study (issue 23)"
    return [
        Job(study, _study_state, _train_study),
        Job(v3_target, lambda: _target_state(FIXED), _run_target(FIXED), needs=(study,)),
        Job(v3_seed, lambda: _second_seed_state(FIXED), _run_second_seed(FIXED), needs=(v3_target,)),
        Job(v3_release, lambda: _release_state(FIXED), needs=(v3_seed,)),
        Job(angle, _angle_state, _train_angle, needs=(study,)),  # the study's pick is its recipe
        Job(angle_target, lambda: _target_state(ANGLE), _run_target(ANGLE), needs=(angle,)),
        Job(angle_seed, lambda: _second_seed_state(ANGLE), _run_second_seed(ANGLE), needs=(angle_target,)),
        Job("3dgan-angle promotion and ship", lambda: _release_state(ANGLE), needs=(angle_seed,)),
        Job(closed_rule, _closed_rule_state, _train_closed_rule, needs=(study,)),  # the pick, the target in force
        Job("first time-to-accuracy results (issue 23)", _first_results_state, _train_first_results,
            needs=(closed_rule,)),
    ]

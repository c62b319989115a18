"""The background slot's queue: it trains the next job whose needs are done, goes on when one ends,
and a job that waits for a person or is blocked holds back only the jobs that need it; each job's
state is read from the committed records."""
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import campaign_queue as queue
from harness.campaign_queue import BLOCKED, DONE, FOREGROUND, READY, Job, JobState, Settings

SETTINGS = Settings(Path("data"), Path("holdtest"))


class FakeJob:
    """A job that is READY until it has run `runs_to_finish` times, then DONE."""

    def __init__(self, name: str, runs_to_finish: int = 1, kind: str = READY, needs: tuple = ()) -> None:
        self.name, self.left, self.kind, self.hours, self.needs = name, runs_to_finish, kind, [], needs

    def state(self) -> JobState:
        return JobState(DONE if self.left == 0 else self.kind, self.name, f"run {self.name}")

    def run(self, hours: float, settings: Settings) -> None:
        self.hours.append(hours)
        self.left -= 1

    def job(self) -> Job:
        return Job(self.name, self.state, self.run if self.kind == READY else None, self.needs)


def test_the_queue_goes_on_to_the_next_job_when_one_ends():
    first, second, third = FakeJob("a"), FakeJob("b"), FakeJob("c", kind=FOREGROUND)
    stopped = queue.run_queue([first.job(), second.job(), third.job()], hours=2.0, settings=SETTINGS)
    assert stopped == JobState(FOREGROUND, "c", "run c")  # a person promotes and ships
    assert len(first.hours) == len(second.hours) == 1 and first.hours[0] <= 2.0


def test_a_job_still_open_after_its_run_ends_the_session():
    """Its time was up or it got SIGTERM: the queue does not start it again."""
    slow, after = FakeJob("slow", runs_to_finish=3), FakeJob("after")
    stopped = queue.run_queue([slow.job(), after.job()], hours=2.0, settings=SETTINGS)
    assert stopped.kind == READY and len(slow.hours) == 1 and after.hours == []


def test_a_blocked_job_holds_back_only_the_jobs_that_need_it():
    blocked, needs_it, free = FakeJob("x", kind=BLOCKED), FakeJob("y", needs=("x",)), FakeJob("z")
    assert queue.run_queue([blocked.job(), needs_it.job(), free.job()], 1.0, SETTINGS).kind == BLOCKED
    assert needs_it.hours == [] and len(free.hours) == 1
    assert queue.run_queue([FakeJob("z", runs_to_finish=0).job()], 1.0, SETTINGS).kind == DONE


def test_v3_blocked_holds_back_only_v3s_own_steps(monkeypatch):
    """The shape of the real queue: v3's target does not hold, so its second seed and its release
    wait; the angle campaign and the closed-rule study need only the study's pick (the closed-rule
    study runs against the target in force)."""
    fakes = {job.name: FakeJob(job.name, needs=job.needs) for job in queue.background_queue()}
    fakes["recipe study (issue 22)"].left = 0
    fakes["3dgan v3 target"].kind = BLOCKED
    for name in ("3dgan v3 promotion and ship", "3dgan-angle promotion and ship"):
        fakes[name].kind = FOREGROUND
    stopped = queue.run_queue([fake.job() for fake in fakes.values()], 5.0, SETTINGS)
    trained = [name for name, fake in fakes.items() if fake.hours]
    assert trained == ["3dgan-angle campaign (issue 25)", "3dgan-angle target", "3dgan-angle second seed",
                       "closed-rule study (issue 23)", "first time-to-accuracy results (issue 23)"]
    assert stopped.kind == BLOCKED and stopped.detail == "3dgan v3 target"


def test_status_shows_a_job_whose_needs_are_not_done_as_queued(capsys):
    from harness.commands.queue import _print_status

    _print_status([FakeJob("a", runs_to_finish=0).job(), FakeJob("b").job(), FakeJob("c", needs=("b",)).job(),
                   FakeJob("d", kind=BLOCKED).job()])
    out = capsys.readouterr().out
    assert "done" in out and re.search(r"^c +queued +after b$", out, re.MULTILINE)
    assert "Next in the background: run b" in out and "Waiting for a person (d): run d" in out


def test_the_queue_is_in_the_issues_order():
    assert [job.name for job in queue.background_queue()] == [
        "recipe study (issue 22)", "3dgan v3 target", "3dgan v3 second seed", "3dgan v3 promotion and ship",
        "3dgan-angle campaign (issue 25)", "3dgan-angle target", "3dgan-angle second seed",
        "3dgan-angle promotion and ship", "closed-rule study (issue 23)", "first time-to-accuracy results (issue 23)"]
    assert [job.run is None for job in queue.background_queue()].count(True) == 2  # the two releases
    jobs = queue.background_queue()
    needs = {job.name: job.needs for job in jobs}
    assert all(set(job.needs) <= {earlier.name for earlier in jobs[:i]} for i, job in enumerate(jobs))
    assert needs["3dgan-angle campaign (issue 25)"] == ("recipe study (issue 22)",)
    assert needs["closed-rule study (issue 23)"] == ("recipe study (issue 22)",)


@dataclass
class FakeHoldTest:
    holds: bool
    complete: bool

    def summary(self) -> str:
        return "19 of 20" if self.holds else "12 of 20"


@pytest.mark.parametrize("record, kind", [(None, READY), (FakeHoldTest(False, False), READY),
                                          (FakeHoldTest(True, True), DONE), (FakeHoldTest(False, True), BLOCKED)])
def test_the_target_steps_run_until_the_candidate_holds_and_block_when_it_does_not(monkeypatch, record, kind):
    from benchmark import hold_test

    monkeypatch.setattr(queue, "_released", lambda benchmark: False)
    monkeypatch.setattr(hold_test, "read_record", lambda path: record)
    state = queue._target_state("3dgan")
    assert state.kind == kind and "target-v3 --benchmark 3dgan" in state.command
    if kind == BLOCKED:
        assert "never loosens a limit" in state.detail


def test_a_released_target_with_its_reference_shipped_is_done(monkeypatch):
    monkeypatch.setattr(queue, "_released", lambda benchmark: True)
    monkeypatch.setattr(queue, "_winner", lambda: ("cosine", "raw"))
    state = queue._release_state("3dgan")  # the shipped reference was validated against v2
    assert state.kind == FOREGROUND
    assert "harness reference reproduce --benchmark 3dgan --arm cosine --seed 2 --promote && " in state.command
    monkeypatch.setattr("reference_model.checkpoint.read_card",
                        lambda path: {"validation": {"thresholds": "3dgan-quality-v3+sha256.0123456789ab"}})
    assert queue._release_state("3dgan").kind == DONE


def test_the_recipe_study_trains_its_next_segment_until_it_has_picked(monkeypatch):
    from benchmark import recipe_study

    monkeypatch.setattr(queue, "_limits", lambda: {})
    monkeypatch.setattr(recipe_study, "next_segment", lambda limits: ("cosine", 200_000))
    monkeypatch.setattr(recipe_study, "arm_samples", {"cosine": 130_000}.get)
    monkeypatch.setattr(recipe_study, "read_arm", lambda arm: None)
    assert queue._study_state() == JobState(READY, "the cosine arm from 130,000 to 200,000 samples",
                                            "harness reference study --hours H")
    sessions = [{"samples_per_second": rate} for rate in (2.0, 8.0, 7.0, 9.0)]
    monkeypatch.setattr(recipe_study, "read_arm", lambda arm: {"sessions": sessions})
    assert queue._study_state().detail == "the cosine arm from 130,000 to 200,000 samples, about 2.4 h at 8.0 samples/s"
    monkeypatch.setattr(recipe_study, "next_segment", lambda limits: None)
    monkeypatch.setattr(queue, "_winner", lambda: ("cosine", "raw"))
    assert queue._study_state().kind == DONE and queue._study_state().detail == "picked cosine/raw"


def test_the_closed_rule_study_waits_for_its_basis_then_trains_its_next_run(monkeypatch):
    from benchmark import scale_study
    from benchmark.scale_study import CANDIDATES, Plan, Run
    from reference_model.errors import InputError

    def no_basis():
        raise InputError("the closed-rule study runs the recipe study's pick, and the recipe study has not picked yet")

    monkeypatch.setattr(scale_study, "basis", no_basis)
    assert queue._closed_rule_state().kind == BLOCKED and "has not picked" in queue._closed_rule_state().detail
    monkeypatch.setattr(scale_study, "basis", lambda: "basis")
    monkeypatch.setattr(scale_study, "current_plan", lambda basis: Plan(Run(CANDIDATES[0], 64, 1), "1, at 64"))
    assert queue._closed_rule_state().detail == "linear at global batch 64, seed 1 (stage 1, at 64)"
    monkeypatch.setattr(scale_study, "current_plan", lambda basis: Plan(None, "done", CANDIDATES[1], 512, (8, 64, 512)))
    rcp_batches = queue._rcp_batches
    monkeypatch.setattr(queue, "_rcp_batches", lambda benchmark: {8})
    assert queue._closed_rule_state() == JobState(
        FOREGROUND, "the rule left standing: sqrt up to global batch 512; write its RCPs, then rules.md section 3 "
        "follows by hand", "harness reference scale-study --write-rcps")
    monkeypatch.setattr(queue, "_rcp_batches", lambda benchmark: {8, 64, 512})
    assert queue._closed_rule_state() == JobState(DONE, "the rule left standing: sqrt up to global batch 512",
                                                  "harness reference scale-study --hours H")
    monkeypatch.setattr(scale_study, "current_plan", lambda basis: Plan(None, "stopped", CANDIDATES[0], 512,
                                                                       problem="the target does not reproduce"))
    assert queue._closed_rule_state() == JobState(BLOCKED, "the target does not reproduce",
                                                  "harness reference scale-study --hours H")
    assert rcp_batches("3dgan") == set(), "no RCPs are written yet"


@dataclass
class FakeVerdict:
    reproduced: bool = False
    exhausted: bool = False
    first_pass: int = 0
    trained: int = 50_000
    within_samples: int = 300_000


@dataclass
class FakeCandidate:
    name: str = "3dgan-quality-v3-rc"


def test_the_second_seed_trains_until_it_reproduces_and_blocks_when_its_allowance_is_spent(monkeypatch):
    from benchmark import campaign, reference_target
    from benchmark.recipe import STUDY

    monkeypatch.setattr(queue, "_released", lambda benchmark: False)
    monkeypatch.setattr(queue, "_winner", lambda: ("cosine", "raw"))
    monkeypatch.setattr(queue, "_second_seed_recipe", lambda benchmark: STUDY["cosine"])
    monkeypatch.setattr(campaign, "reproduction_target", lambda benchmark, recipe: None)
    assert queue._second_seed_state("3dgan").kind == BLOCKED
    monkeypatch.setattr(campaign, "reproduction_target", lambda benchmark, recipe: FakeCandidate())
    monkeypatch.setattr(campaign, "read_curve", lambda name, seed: None)
    state = queue._second_seed_state("3dgan")
    assert state.kind == READY
    assert state.command == "harness reference train --benchmark 3dgan --arm cosine --seed 2 --hours H"
    monkeypatch.setattr(campaign, "read_curve", lambda name, seed: {"points": [{}], "sessions": []})
    for verdict, kind in [(FakeVerdict(), READY), (FakeVerdict(reproduced=True, first_pass=85_000), DONE),
                          (FakeVerdict(exhausted=True, trained=300_000), BLOCKED)]:
        monkeypatch.setattr(reference_target, "judge_reproduction", lambda candidate, curve, v=verdict: v)
        assert queue._second_seed_state("3dgan").kind == kind
    curve = {"points": [{}], "sessions": [{"samples_at_stop": 53_648, "samples_per_second": 2.5}]}
    monkeypatch.setattr(campaign, "read_curve", lambda name, seed: curve)
    monkeypatch.setattr(reference_target, "judge_reproduction", lambda candidate, curve: FakeVerdict())
    assert queue._second_seed_state("3dgan").detail == ("seed 2 at 53,648 of 300,000 samples (last evaluated at "
                                                        "50,000), about 27.4 h at 2.5 samples/s")

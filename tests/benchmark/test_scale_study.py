"""The closed-rule study as docs/closed-rule-study.md fixed it: the candidate rules' rates, each
run's recipe, how a run's curve ends, and the staged order and picking rule on made-up outcomes."""
import json
import math
from dataclasses import dataclass

import pytest

from benchmark import campaign, scale_study
from benchmark.distributed import warmup_learning_rate
from benchmark.recipe import LINEAR, SQRT, STUDY, UNSCALED, lr_scale_factor, peak_learning_rate
from benchmark.scale_study import CANDIDATES, Basis, Candidate, Outcome, Run, plan
from benchmark.trainer import TrainConfig
from reference_model.errors import InputError

LINEAR_RULE, SQRT_RULE, UNSCALED_RULE = CANDIDATES
T = 100_000


def test_each_rule_scales_the_peak_rate_its_own_way():
    assert peak_learning_rate(0.001, 64, LINEAR) == pytest.approx(0.064)
    assert peak_learning_rate(0.001, 64, SQRT) == pytest.approx(0.008)
    assert peak_learning_rate(0.001, 64, UNSCALED) == pytest.approx(0.001)
    assert lr_scale_factor(8, LINEAR) == 8  # exactly the ranks: the compliance rule compares it to them
    with pytest.raises(ValueError, match="one of linear, sqrt, unscaled"):
        lr_scale_factor(8, "cubic")


def test_the_warm_up_rises_from_the_base_rate_to_the_rules_peak():
    schedule = warmup_learning_rate(0.001, 64, warmup_steps=10, scaling=SQRT)
    assert schedule(0) == pytest.approx(0.001)
    assert schedule(5) == pytest.approx(0.001 + 0.007 / 2)
    assert schedule(10) == schedule(1_000) == pytest.approx(0.008)


def test_a_warm_up_in_samples_is_whole_steps_of_the_global_batch():
    in_samples = TrainConfig(benchmark="3dgan", mode="tta", data=".", checkpoint_dir=".", warmup_samples=5_000)
    assert in_samples.warmup_steps(global_batch=512, data_epoch_steps=100) == 10  # 9.77 rounded up
    in_epochs = TrainConfig(benchmark="3dgan", mode="tta", data=".", checkpoint_dir=".", warmup_epochs=5)
    assert in_epochs.warmup_steps(global_batch=512, data_epoch_steps=100) == 500


def test_candidates_are_the_documents_table():
    assert [(c.name, c.warmup_samples) for c in CANDIDATES] == [
        ("linear", 1_000_000), ("sqrt", 20_000), ("unscaled", 0)]  # linear: 5 epochs of 200,000 events
    assert Candidate(SQRT, 5_000).name == "sqrt-warmup5000"


@pytest.mark.parametrize("batch, interval", [(8, 5_000), (64, 5_056), (512, 5_120)])
def test_evaluations_fall_on_the_first_step_at_or_past_5000_samples(batch, interval):
    assert scale_study.interval_samples(batch) == interval


@dataclass
class FakeTarget:
    limits: dict
    version: str = "3dgan-quality-v3#abcdef012345"
    name: str = "3dgan-quality-v3"


def make_basis(generator: str = "raw") -> Basis:
    return Basis(STUDY["cosine"], generator, FakeTarget({"separation.hits": 1.0}), T)


def test_a_run_is_the_picks_recipe_at_its_ranks_rule_interval_and_budget():
    recipe = scale_study.scale_recipe(make_basis(), Run(SQRT_RULE, 512, 1))
    picked = STUDY["cosine"]
    assert (recipe.emulated_ranks, recipe.global_batch, recipe.per_rank_batch) == (64, 512, 8)
    assert recipe.eval_every_samples == 5_120 and recipe.steps_per_interval == 10
    assert recipe.budget_samples == math.ceil(3 * T / 5_120) * 5_120
    assert (recipe.lr_decay, recipe.precision, recipe.train_data_seed) == (
        picked.lr_decay, picked.precision, picked.train_data_seed)
    assert recipe.warmup_epochs == 0 and recipe.warmup_samples == 20_000 and recipe.lr_scaling == SQRT
    assert recipe.ema_horizon_samples is None and recipe.judged_generator == "raw"
    assert recipe.target == "3dgan-quality-v3#abcdef012345"
    assert recipe.campaign_name == "3dgan-scale-b512-sqrt"
    assert scale_study.scale_recipe(make_basis(), Run(UNSCALED_RULE, 64, 1)).budget_samples == \
        math.ceil(5 * T / 5_056) * 5_056


def test_a_moving_average_pick_judges_the_average_over_the_same_horizon_in_samples():
    recipe = scale_study.scale_recipe(make_basis("ema"), Run(LINEAR_RULE, 64, 1))
    assert recipe.judged_generator == "ema"
    assert recipe.ema_decay == pytest.approx(1 - 64 / STUDY["cosine"].ema_horizon_samples)
    assert recipe.train_options()["emulated_ranks"] == 8


@pytest.fixture
def convergence_dir(tmp_path, monkeypatch):
    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path)
    return tmp_path


def write_curve(run: Run, values: list[float], reason: str = "", stop: int = 0) -> None:
    recipe = scale_study.scale_recipe(make_basis(), run)
    every = recipe.eval_every_samples
    points = [{"samples": every * (i + 1), "metrics": {"separation.hits": v}} for i, v in enumerate(values)]
    trained = stop or every * len(values)
    document = {"points": points, "sessions": [{"samples_at_stop": trained, "reason": reason}]}
    path = campaign.curve_path(recipe.campaign_name, run.seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document))


def test_a_run_ends_at_its_first_pass_its_budget_or_its_divergence(convergence_dir):
    basis = make_basis()
    budget = scale_study.scale_recipe(basis, Run(LINEAR_RULE, 64, 1)).budget_samples
    assert scale_study.outcome(basis, Run(LINEAR_RULE, 64, 1)) is None  # not started
    write_curve(Run(LINEAR_RULE, 64, 1), [3.0, 2.0])
    assert scale_study.outcome(basis, Run(LINEAR_RULE, 64, 1)) is None  # training
    write_curve(Run(LINEAR_RULE, 64, 1), [3.0, 0.9, 2.0])
    assert scale_study.outcome(basis, Run(LINEAR_RULE, 64, 1)) == Outcome(2 * 5_056, True)
    write_curve(Run(SQRT_RULE, 64, 1), [3.0], reason="diverged: non-finite g_loss in epoch 2")
    assert scale_study.outcome(basis, Run(SQRT_RULE, 64, 1)) == Outcome(budget, False)
    write_curve(Run(UNSCALED_RULE, 64, 1), [3.0], stop=10**9)
    assert scale_study.outcome(basis, Run(UNSCALED_RULE, 64, 1)) == Outcome(
        scale_study.scale_recipe(basis, Run(UNSCALED_RULE, 64, 1)).budget_samples, False)
    assert scale_study.outcome(basis, Run(SQRT_RULE, 8, 2)) is None  # T's run, not started
    write_t_run()
    assert scale_study.outcome(basis, Run(SQRT_RULE, 8, 2)) == Outcome(T, True)  # one run under every rule


def write_t_run() -> None:
    """T's run, passing first at T samples."""
    write_curve(scale_study.T_RUN, [3.0] * (T // 5_000 - 1) + [0.9, 2.0])


def test_status_names_each_runs_state(convergence_dir):
    write_t_run()
    write_curve(Run(LINEAR_RULE, 64, 1), [3.0, 0.9])
    write_curve(Run(SQRT_RULE, 64, 1), [3.0], reason="diverged: 99% empty")
    states = {(row[0], row[1]): row[-1] for row in scale_study.status(make_basis())[0]}
    assert states == {(8, "linear"): "converged at 100,000", (64, "linear"): "converged at 10,112",
                      (64, "sqrt"): "diverged", (64, "unscaled"): "not started"}


def test_a_finished_run_is_not_trained_again(convergence_dir, monkeypatch):
    from benchmark import quality

    basis = make_basis()
    recipe = scale_study.scale_recipe(basis, Run(LINEAR_RULE, 64, 1))
    monkeypatch.setattr(quality, "load_thresholds", lambda *a, **k: basis.target)
    write_curve(Run(LINEAR_RULE, 64, 1), [3.0, 0.9])
    curve = campaign.Curve.__new__(campaign.Curve)
    curve.document = campaign.read_curve(recipe.campaign_name, 1)
    with pytest.raises(InputError, match="has ended \\(converged at 10,112 samples\\)"):
        campaign._refuse_finished(recipe, 1, curve, basis.target)
    replaced = FakeTarget(basis.limits, version="3dgan-quality-v4#0123456789ab", name="3dgan-quality-v4")
    monkeypatch.setattr(quality, "load_thresholds", lambda *a, **k: replaced)
    with pytest.raises(InputError, match="target in force is 3dgan-quality-v4.*re-run"):
        campaign._stop_target(recipe, 1)


def test_the_study_runs_the_recipe_studys_pick_against_the_target_in_force(monkeypatch):
    from benchmark import quality

    monkeypatch.setattr(scale_study, "outcome", lambda study_basis, run: None)  # T's run not started
    today = scale_study.basis()
    assert (today.recipe, today.generator) == (STUDY["cosine"], "raw")  # the committed pick
    assert today.target.name == quality.load_thresholds("3dgan").name and today.samples_to_target is None
    assert scale_study.current_plan(today) == scale_study.Plan(scale_study.T_RUN, "0, T: the pick at one rank")
    t_run = scale_study.scale_recipe(today, Run(SQRT_RULE, 8, 2))  # any rule's batch-8 seed 2 is T's run
    assert t_run == scale_study.scale_recipe(today, scale_study.T_RUN)
    assert t_run.budget_samples == 300_000 and t_run.emulated_ranks == 1 and t_run.target == today.target.version
    with pytest.raises(ValueError, match="unknown until T's run has passed"):
        scale_study.scale_recipe(today, Run(LINEAR_RULE, 64, 1))
    monkeypatch.setattr(scale_study, "outcome",
                        lambda study_basis, run: Outcome(90_000, True) if run == scale_study.T_RUN else None)
    assert scale_study.basis().samples_to_target == 90_000


def test_a_pick_that_misses_the_target_at_one_rank_stops_the_study_before_stage_1():
    current = plan(lambda run: Outcome(300_000, False) if run == scale_study.T_RUN else None)
    assert current.next_run is None and current.stage == "stopped"
    assert "does not reach it at one rank" in current.problem and "issue 22" in current.problem


# ------------------------------------------------------------------------------------------------
# The staged order and the picking rule, on made-up outcomes (samples, converged)
# ------------------------------------------------------------------------------------------------
def outcomes(table: dict[tuple, tuple[int, bool]]):
    """Outcomes by (candidate name, batch) for seed 1, or (candidate name, batch, seed); batch 8's
    seed 2 is the pick's reproduction."""
    def result(run: Run):
        if run.global_batch == 8 and run.seed == 2:
            return Outcome(T, True)
        name = run.candidate.name
        found = table.get((name, run.global_batch, run.seed)) or (run.seed == 1 and table.get((name, run.global_batch)))
        return Outcome(*found) if found else None
    return result


def test_stage_1_runs_every_candidate_at_64_first():
    assert plan(outcomes({})).next_run == Run(LINEAR_RULE, 64, 1)
    assert plan(outcomes({("linear", 64): (90_000, True)})).next_run == Run(SQRT_RULE, 64, 1)


def test_stage_2_runs_at_512_only_what_converged_at_64():
    table = {("linear", 64): (300_000, False), ("sqrt", 64): (120_000, True), ("unscaled", 64): (200_000, True)}
    assert plan(outcomes(table)) == scale_study.Plan(Run(SQRT_RULE, 512, 1), "2, at 512 what converged at 64")
    table[("sqrt", 512)] = (150_000, True)
    assert plan(outcomes(table)).next_run == Run(UNSCALED_RULE, 512, 1)


def test_nothing_converging_at_64_caps_the_closed_division_at_batch_8():
    table = {(c.name, 64): (500_000, False) for c in CANDIDATES}
    current = plan(outcomes(table))
    assert (current.rule, current.cap, current.next_run) == (LINEAR_RULE, 8, Run(LINEAR_RULE, 8, 3))


def test_nothing_converging_at_512_caps_it_at_64_with_the_cheapest_rule_there():
    table = {("linear", 64): (300_000, False), ("sqrt", 64): (150_000, True), ("unscaled", 64): (140_000, True),
             ("sqrt", 512): (300_000, False), ("unscaled", 512): (500_000, False)}
    current = plan(outcomes(table))
    assert (current.rule, current.cap) == (UNSCALED_RULE, 64)
    table.update({("unscaled", 8, 3): (100_000, True), ("unscaled", 8, 4): (100_000, True)})
    assert plan(outcomes(table)).next_run == Run(UNSCALED_RULE, 64, 2)  # seed 1 at 64 is stage 1's


def test_stage_3_tries_two_warm_ups_on_the_better_warming_rule_and_a_faster_one_replaces_its_warm_up():
    table = {("linear", 64): (150_000, True), ("sqrt", 64): (120_000, True), ("unscaled", 64): (300_000, True),
             ("linear", 512): (250_000, True), ("sqrt", 512): (200_000, True), ("unscaled", 512): (500_000, False)}
    current = plan(outcomes(table))
    assert current.next_run == Run(Candidate(SQRT, 5_000), 512, 1) and current.stage.startswith("3,")
    table.update({("sqrt-warmup5000", 512): (180_000, True), ("sqrt-warmup50000", 512): (190_000, True)})
    current = plan(outcomes(table))
    assert current.rule == Candidate(SQRT, 5_000) and current.cap == 512
    assert current.next_run == Run(Candidate(SQRT, 5_000), 8, 3)  # at one rank every rule is the same rule
    table.update({("sqrt-warmup5000", 8, 3): (100_000, True), ("sqrt-warmup5000", 8, 4): (100_000, True)})
    assert plan(outcomes(table)).next_run == Run(Candidate(SQRT, 5_000), 64, 1)  # stage 1 ran another warm-up


def test_a_slower_warm_up_changes_nothing_and_unscaled_can_win_without_a_warm_up():
    table = {("linear", 64): (150_000, True), ("sqrt", 64): (300_000, False), ("unscaled", 64): (110_000, True),
             ("linear", 512): (250_000, True), ("unscaled", 512): (130_000, True),
             ("linear-warmup5000", 512): (260_000, True), ("linear-warmup50000", 512): (400_000, False)}
    assert plan(outcomes(table)).rule == UNSCALED_RULE


def test_equal_costs_go_to_the_candidate_listed_first():
    table = {(c.name, b): (120_000, True) for c in CANDIDATES for b in (64, 512)}
    table.update({("linear-warmup5000", 512): (120_000, True), ("linear-warmup50000", 512): (120_000, True)})
    assert plan(outcomes(table)).rule == LINEAR_RULE


def test_the_study_is_done_when_three_seeds_converged_at_every_batch():
    table = {(c.name, b, seed): (120_000, True) for c in CANDIDATES for b in (8, 64, 512) for seed in (1, 2, 3, 4)}
    table.update({("linear-warmup5000", 512): (130_000, True), ("linear-warmup50000", 512): (130_000, True)})
    assert plan(outcomes(table)) == scale_study.Plan(None, "done", LINEAR_RULE, 512, (8, 64, 512))


# Stage 4, from the rule left standing: linear, closed up to 512 by stages 1-3.
STAGES_1_TO_3 = {("linear", 64): (150_000, True), ("sqrt", 64): (300_000, False), ("unscaled", 64): (400_000, False),
                 ("linear", 512): (250_000, True), ("linear-warmup5000", 512): (260_000, True),
                 ("linear-warmup50000", 512): (270_000, True)}


def stage_4(extra: dict) -> scale_study.Plan:
    return plan(outcomes({**STAGES_1_TO_3, **extra}))


def test_stage_4_runs_seeds_until_three_converged_where_a_failed_seed_brings_in_the_next():
    assert stage_4({}).next_run == Run(LINEAR_RULE, 8, 3)  # seed 2 is v3's reproduction
    at_8 = {("linear", 8, 3): (90_000, True), ("linear", 8, 4): (110_000, True)}
    assert stage_4(at_8).next_run == Run(LINEAR_RULE, 64, 2)  # seed 1 at 64 is stage 1's run
    at_64 = {("linear", 64, 2): (400_000, False), ("linear", 64, 3): (140_000, True)}
    current = stage_4({**at_8, **at_64})
    assert current.next_run == Run(LINEAR_RULE, 64, 4) and current.held == (8,)
    at_64[("linear", 64, 4)] = (160_000, True)
    assert stage_4({**at_8, **at_64}).next_run == Run(LINEAR_RULE, 512, 2)


def test_three_failed_seeds_at_a_batch_lower_the_cap_to_the_largest_batch_where_the_rule_held():
    at_8 = {("linear", 8, 3): (90_000, True), ("linear", 8, 4): (110_000, True)}
    at_64 = {("linear", 64, 2): (140_000, True), ("linear", 64, 3): (150_000, True)}
    at_512 = {("linear", 512, 2): (750_000, False), ("linear", 512, 3): (260_000, True),
              ("linear", 512, 4): (750_000, False), ("linear", 512, 5): (750_000, False)}
    assert stage_4({**at_8, **at_64, **at_512}) == scale_study.Plan(None, "done", LINEAR_RULE, 64, (8, 64))


def test_a_rule_that_does_not_hold_at_one_rank_stops_the_study_and_says_why():
    at_8 = {("linear", 8, 3): (300_000, False), ("linear", 8, 4): (300_000, False), ("linear", 8, 5): (90_000, True),
            ("linear", 8, 6): (300_000, False)}
    current = stage_4(at_8)
    assert current.next_run is None and current.held == ()
    assert "the target does not reproduce at one rank" in current.problem


def test_the_rcp_runs_are_the_converged_seeds_with_the_rules_hyperparameters(convergence_dir, monkeypatch):
    basis = make_basis()
    table = {**STAGES_1_TO_3, ("linear", 8, 3): (95_000, True), ("linear", 8, 4): (110_000, True),
             ("linear", 64, 2): (400_000, False), ("linear", 64, 3): (140_000, True),
             ("linear", 64, 4): (160_000, True), ("linear", 512, 2): (240_000, True),
             ("linear", 512, 3): (280_000, True)}
    monkeypatch.setattr(scale_study, "outcome", lambda study_basis, run: outcomes(table)(run))
    runs = scale_study.reference_runs(basis)
    assert [(r.global_batch, r.seed, r.samples_to_converge) for r in runs] == [
        (8, 2, T), (8, 3, 95_000), (8, 4, 110_000), (64, 1, 150_000), (64, 3, 140_000), (64, 4, 160_000),
        (512, 1, 250_000), (512, 2, 240_000), (512, 3, 280_000)]
    at_8, at_512 = runs[0].hyperparameters, runs[-1].hyperparameters
    assert at_8["opt_base_learning_rate"] == pytest.approx(0.001) and at_8["opt_learning_rate_warmup_samples"] == 0
    assert at_512["opt_base_learning_rate"] == pytest.approx(0.064)
    assert at_512["opt_learning_rate_warmup_samples"] == 1_000_000 and at_512["eval_every_samples"] == 5_120
    assert at_512["opt_learning_rate_decay"] == {"start_samples": 100_000, "end_samples": 200_000, "final_factor": 0.1}
    assert at_512["quality_thresholds"] == basis.target.version and at_512["opt_learning_rate_scaling"] == LINEAR
    del table[("linear", 512, 3)]
    with pytest.raises(InputError, match="stage 4, .* next linear at global batch 512, seed 3; the RCPs are written "
                                         "once stage 4 is done"):
        scale_study.reference_runs(basis)


def test_the_rcp_runs_make_a_file_mlperf_loggings_checker_reads(convergence_dir, monkeypatch, tmp_path):
    from benchmark import rcp

    table = {**STAGES_1_TO_3, **{("linear", 8, s): (90_000 + 10_000 * s, True) for s in (3, 4)},
             **{("linear", 64, s): (110_000 + 5_000 * s, True) for s in (2, 3)},  # under the line from 8 to 512
             **{("linear", 512, s): (240_000 + 5_000 * s, True) for s in (2, 3)}}
    monkeypatch.setattr(scale_study, "outcome", lambda study_basis, run: outcomes(table)(run))
    (tmp_path / "3dgan.json").write_text("{}\n")
    rcp.add_reference_runs("3dgan", scale_study.reference_runs(make_basis()), 5, tmp_path)
    assert sorted(r["BS"] for r in rcp.load_rcps("3dgan", tmp_path).values()) == [8, 64, 512]
    assert rcp.judge("3dgan", 64, [150_000] * 5, 5, tmp_path).status == rcp.FOUND


def test_the_status_names_the_target_t_every_run_reached_and_the_next(convergence_dir, capsys):
    from harness.commands.scale_study import _print_status

    write_t_run()
    write_curve(Run(LINEAR_RULE, 64, 1), [3.0, 0.9])
    _print_status(make_basis())
    out = capsys.readouterr().out
    assert "Judged against 3dgan-quality-v3 with the raw generator; T (the single-rank samples to target, seed 2) = " \
           "100,000" in out
    assert "converged at 10,112" in out
    assert "Next: sqrt at global batch 64, seed 1 (stage 1, every candidate at 64)" in out


def test_write_rcps_adds_the_studys_points_once_and_the_status_says_where_the_rule_held(
        convergence_dir, monkeypatch, tmp_path, capsys):
    from benchmark import rcp
    from harness.commands.scale_study import _print_status, write_rcps

    table = {**STAGES_1_TO_3, **{("linear", 8, s): (100_000, True) for s in (3, 4)},
             **{("linear", 64, s): (120_000, True) for s in (2, 3)},
             ("linear", 512, 2): (750_000, False), ("linear", 512, 3): (750_000, False),
             ("linear", 512, 4): (750_000, False)}
    monkeypatch.setattr(scale_study, "outcome", lambda study_basis, run: outcomes(table)(run))
    monkeypatch.setattr(rcp, "RCP_DIR", tmp_path)
    (tmp_path / "3dgan.json").write_text("{}\n")
    _print_status(make_basis())
    out = capsys.readouterr().out
    assert "Rule left standing: linear, closed up to global batch 64" in out
    assert "Stage 4: the rule held (3 seeds converged) at global batch 8, 64" in out
    write_rcps(make_basis())
    assert "Wrote the RCPs of linear at global batch 8, 64 (6 runs)" in capsys.readouterr().out
    assert sorted(r["BS"] for r in rcp.load_rcps("3dgan").values()) == [8, 64]
    with pytest.raises(InputError, match="already has an RCP"):
        write_rcps(make_basis())


def test_the_status_says_t_is_not_known_until_its_run_has_passed(convergence_dir, capsys):
    from dataclasses import replace

    from harness.commands.scale_study import _print_status

    _print_status(replace(make_basis(), samples_to_target=None))
    out = capsys.readouterr().out
    assert "T (the single-rank samples to target, seed 2) = not yet: T's run: the pick at global batch 8, seed 2 " \
           "sets it" in out
    assert "Next: T's run: the pick at global batch 8, seed 2 (stage 0, T: the pick at one rank)" in out


def test_training_reads_t_from_its_run_before_the_runs_whose_budgets_it_sets(convergence_dir, monkeypatch):
    from benchmark import quality, recipe_study
    from harness.commands import reference, scale_study as command

    monkeypatch.setattr(recipe_study, "final_verdict", lambda limits: recipe_study.Verdict({}, ("cosine", "raw")))
    monkeypatch.setattr(quality, "load_thresholds", lambda *a, **k: make_basis().target)
    trained = []

    def fake_session(recipe, seed, hours, data_dir, threads):
        trained.append((recipe.campaign_name, seed, recipe.budget_samples))
        if (recipe.campaign_name, seed) == (scale_study.scale_recipe(make_basis(), scale_study.T_RUN).campaign_name, 2):
            write_t_run()  # T's run passes at T; the next run is cut off by the session's end

    monkeypatch.setattr(reference, "train_session", fake_session)
    command.train_runs(2.0, convergence_dir, 0)
    assert trained == [("3dgan-scale-b8-linear", 2, 300_000),
                       ("3dgan-scale-b64-linear", 1, math.ceil(3 * T / 5_056) * 5_056)]

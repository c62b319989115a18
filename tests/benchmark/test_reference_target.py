"""v2 from the reference campaign: the release candidate the rule writes at the budget, its floor
limits by v1's own procedure, and a second seed's evaluations judged against it."""
from dataclasses import asdict

import pytest

from benchmark import quality
from benchmark.calibration import calibrate
from benchmark.recipe import CAMPAIGNS
from benchmark.reference_target import judge_reproduction, release_candidate, v2_gated_metrics, window_points
from reference_model.errors import InputError

BUDGET = 60_000
EVERY = 5_000
NOT_IN_V1 = ("profile_l1.x", "profile_l1.y", "profile_l1.z")


@pytest.fixture(scope="module")
def v1():
    """A small noise-floor calibration standing in for v1: like the real v1, it does not gate
    the energy-weighted profile distances."""
    document = calibrate("3dgan", "3dgan-quality-v1", repetitions=20, events_per_bin=10,
                         verify_repetitions=0, progress=False)
    full = {name: document["metrics"][name]["threshold"] for name in NOT_IN_V1}
    document["metrics"] = {k: v for k, v in document["metrics"].items() if k not in NOT_IN_V1}
    thresholds = quality.Thresholds.from_document(document, sha256="0" * 64)
    return thresholds, full


def _curve(seed: int, samples: list[int], value, budget: int = BUDGET) -> dict:
    """A campaign curve whose every metric at `samples` s is value(name, s)."""
    design = quality.load_thresholds("3dgan")
    names = v2_gated_metrics(design)
    recipe = {**asdict(CAMPAIGNS["3dgan"]), "budget_samples": budget}
    return {"benchmark": "3dgan", "seed": seed, "recipe": recipe,
            "points": [{"samples": s, "metrics": {n: value(n, s) for n in names}} for s in samples]}


def _reference_value(name: str, samples: int) -> float:
    if name.startswith("separation.hits"):
        return 1.0  # saturated, as the real campaign's hit counts often are
    return 0.001 * samples / EVERY  # the largest value in the window is the last one


def test_the_window_is_the_last_evaluations_up_to_the_budget():
    curve = _curve(1, list(range(EVERY, BUDGET + 2 * EVERY, EVERY)), _reference_value)
    assert [p["samples"] for p in window_points(curve)] == list(range(35_000, 60_001, EVERY))
    with pytest.raises(InputError, match="evaluated 55,000 of its 60,000-sample budget"):
        window_points(_curve(1, list(range(EVERY, BUDGET, EVERY)), _reference_value))


def test_release_candidate_follows_the_rule_and_computes_missing_floors_like_v1(v1):
    thresholds, full = v1
    curve = _curve(1, list(range(EVERY, BUDGET + EVERY, EVERY)), _reference_value)
    document = release_candidate(curve, "f" * 64, thresholds, progress=False)
    assert document["version"] == "3dgan-quality-v2-rc" and document["submittable"] is False
    assert document["reproduction"] == {"within_samples": 90_000, "reference_seed": 1}
    metrics = document["metrics"]
    assert set(metrics) == set(v2_gated_metrics(thresholds))
    for name in NOT_IN_V1:  # v1's procedure on v1's pairs gives what v1 would have gated them at
        assert metrics[name]["floor_limit"] == full[name]
    assert sorted(document["calibration"]["floors_computed_here"]) == sorted(NOT_IN_V1)
    sf = metrics["objective.sampling_fraction"]
    assert sf["reference_values"] == [0.007, 0.008, 0.009, 0.01, 0.011, 0.012]
    assert sf["threshold"] == pytest.approx(max(thresholds.limits["objective.sampling_fraction"], 1.25 * 0.012))
    hits = metrics["separation.hits.E45-55"]
    assert hits["threshold"] == 1.25 and "gates nothing" in hits["note"]
    assert document["calibration"]["campaign"]["window_samples"][-1] == BUDGET
    assert quality.Thresholds.from_document(document, sha256="1" * 64).limits  # a loadable target


def test_a_second_seed_reproduces_only_within_its_allowance(v1):
    thresholds, _ = v1
    reference = _curve(1, list(range(EVERY, BUDGET + EVERY, EVERY)), _reference_value)
    candidate = quality.Thresholds.from_document(release_candidate(reference, "f" * 64, thresholds,
                                                                   progress=False), sha256="2" * 64)
    limit = candidate.limits["profile_l1.x"]

    def passing_from(first: int):
        return lambda name, s: 0.0 if s >= first else (2 * limit if name == "profile_l1.x" else 0.0)

    verdict = judge_reproduction(candidate, _curve(2, [30_000, 40_000, 50_000], passing_from(40_000)))
    assert verdict.reproduced and verdict.first_pass == 40_000
    assert verdict.closest[0] == (40_000, []) and verdict.closest[-1] == (30_000, ["profile_l1.x"])

    late = judge_reproduction(candidate, _curve(2, [85_000, 90_000, 95_000], passing_from(95_000)))
    assert not late.reproduced and late.exhausted and late.first_pass == 95_000
    early = judge_reproduction(candidate, _curve(2, [5_000, 10_000], passing_from(99_999)))
    assert not early.reproduced and not early.exhausted

    with pytest.raises(InputError, match="set the limits"):
        judge_reproduction(candidate, _curve(1, [5_000], passing_from(0)))
    with pytest.raises(InputError, match="another recipe"):
        judge_reproduction(candidate, _curve(2, [5_000], passing_from(0), budget=BUDGET + 1))
    with pytest.raises(InputError, match="not a release candidate"):
        judge_reproduction(thresholds, _curve(2, [5_000], passing_from(0)))



def test_a_candidate_set_by_the_moving_average_judges_the_moving_average(v1):
    """A v3 set by a study arm's EMA generator: a second seed reproduces it with its own EMA."""
    import copy

    thresholds, _ = v1
    reference = _curve(1, list(range(EVERY, BUDGET + EVERY, EVERY)), _reference_value)
    document = copy.deepcopy(release_candidate(reference, "f" * 64, thresholds, progress=False))
    document["calibration"]["campaign"]["generator"] = "ema"
    candidate = quality.Thresholds.from_document(document, sha256="3" * 64)
    limit = candidate.limits["profile_l1.x"]
    second = _curve(2, [30_000, 40_000], lambda name, s: 2 * limit if name == "profile_l1.x" else 0.0)
    for point in second["points"]:  # the trained generator fails, its moving average passes at 40k
        point["ema"] = {"metrics": {**point["metrics"], "profile_l1.x": 0.0 if point["samples"] >= 40_000 else 2 * limit}}
    verdict = judge_reproduction(candidate, second)
    assert verdict.reproduced and verdict.first_pass == 40_000
    document["calibration"]["campaign"]["generator"] = "raw"
    raw = quality.Thresholds.from_document(document, sha256="4" * 64)
    assert not judge_reproduction(raw, second).reproduced

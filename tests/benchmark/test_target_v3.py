"""The v3 rule (CALIBRATION.md, "v3 limits: the rule") applied to synthetic curves and records:
each limit is the largest of 1.1 x window max, 1.1 x calibration-seed max (the angle rule: v1's
tolerance bound on them) and the floor, capped at v2's; unsteady metrics are dropped; the window
and the seeds are the rule's, or refused."""
import numpy as np
import pytest

from benchmark import quality, target_v3
from benchmark.calibration import threshold_from_floor
from benchmark.hold_test import CALIBRATION_SEEDS, HoldTest
from reference_model.errors import InputError


def test_each_limit_names_what_set_it_and_v2_caps_it():
    window = {"a": [0.10, 0.12], "b": [0.010, 0.011], "c": [0.02, 0.03], "d": [0.5, 0.4]}
    calibration = {"a": [0.05, 0.08], "b": [0.02, 0.015], "c": [0.01, 0.01], "d": [0.45, 0.5]}
    floors = {"a": 0.01, "b": 0.01, "c": 0.05, "d": 0.1}
    gated, dropped = target_v3.v3_limits(window, calibration, floors, cap_limits={"d": 0.5})
    assert gated["a"]["threshold"] == 0.132 and gated["a"]["set_by"] == "window"
    assert gated["b"]["threshold"] == 0.022 and gated["b"]["set_by"] == "calibration seeds"
    assert gated["c"]["threshold"] == 0.05 and gated["c"]["set_by"] == "noise floor"
    assert gated["d"]["threshold"] == 0.5 and gated["d"]["rule_limit"] == 0.55
    assert "never looser than v2" in gated["d"]["set_by"]
    assert not dropped


def test_with_a_tolerance_the_calibration_seeds_bound_is_v1s_bound_on_their_values():
    seeds = list(np.linspace(0.05, 0.10, 20))  # the spread of a first-moment separation at 200 per bin
    window, floors = {"m": [0.06, 0.07]}, {"m": 0.01}
    by_margin, _ = target_v3.v3_limits(window, {"m": seeds}, floors, {})
    by_tolerance, _ = target_v3.v3_limits(window, {"m": seeds}, floors, {}, tolerance_over=36)
    assert by_margin["m"]["threshold"] == 0.11
    assert by_tolerance["m"]["threshold"] == threshold_from_floor(np.asarray(seeds), 36)[0] > 0.125
    assert by_tolerance["m"]["set_by"] == "calibration seeds"


def test_unsteady_metrics_are_reported_not_gated():
    gated, dropped = target_v3.v3_limits({"w": [0.01, 0.05]}, {"w": [0.02]}, {"w": 0.0}, {})
    assert not gated and dropped == {"w": {"window_min": 0.01, "window_max": 0.05}}
    assert target_v3.too_spread([0.0, 0.1]) and not target_v3.too_spread([0.1, 0.3])


def curve(samples: list[int], value: float = 0.1, ema: bool = True, benchmark: str = "3dgan") -> dict:
    names = target_v3.proposed_metrics(quality.load_thresholds(benchmark, version=target_v3.RULES[benchmark].judged_against))
    metrics = {name: value for name in names}
    budget = 200_000 if benchmark == "3dgan" else 100_000
    return {"benchmark": benchmark, "seed": 1, "recipe": {"arm": "constant", "budget_samples": budget},
            "points": [{"samples": s, "metrics": metrics, **({"ema": {"metrics": metrics}} if ema else {})}
                       for s in samples]}


def test_the_window_is_the_rules_and_complete():
    names = ["profile_l1.x"]
    full = curve(list(range(5_000, 200_001, 5_000)))
    assert target_v3.window_values(full, "ema", names) == {"profile_l1.x": [0.1] * 10}
    with pytest.raises(InputError, match="v3 needs 10 there, up to 200,000"):
        target_v3.window_values(curve(list(range(5_000, 190_001, 5_000))), "raw", names)
    batch128 = curve(list(range(5_120, 200_001, 5_120)))  # its window ends at 199,680
    assert len(target_v3.window_values(batch128, "raw", names)["profile_l1.x"]) == 10
    with pytest.raises(InputError, match="no moving-average generator"):
        target_v3.window_values(curve(list(range(5_000, 200_001, 5_000)), ema=False), "ema", names)


def record(seeds, value: float = 0.1, benchmark: str = "3dgan") -> HoldTest:
    names = target_v3.proposed_metrics(quality.load_thresholds(benchmark, version=target_v3.RULES[benchmark].judged_against))
    return HoldTest({"candidate_sha256": "abc", "planned_seeds": list(seeds),
                     "seeds": {str(s): {"passed": True, "failed": [], "metrics": {n: value for n in names}}
                               for s in seeds}})


def test_release_candidate_from_window_calibration_and_floors():
    v2 = quality.load_thresholds("3dgan", version="3dgan-quality-v2")
    names = target_v3.proposed_metrics(v2)
    assert len(names) == 29 + 15 and all(name in names for name in v2.limits)
    floors = {name: 0.001 for name in names}
    document = target_v3.release_candidate(v2, floors, curve(list(range(5_000, 200_001, 5_000)), 0.01),
                                           "f" * 64, "ema", record(CALIBRATION_SEEDS, 0.02))
    assert document["version"] == "3dgan-quality-v3-rc" and not document["submittable"]
    assert set(document["metrics"]) == set(names)
    assert {entry["set_by"] for entry in document["metrics"].values()} == {"calibration seeds"}
    assert document["metrics"]["profile_l1.x"]["threshold"] == 0.022
    assert document["reproduction"] == {"within_samples": 300_000, "reference_seed": 1}
    with pytest.raises(InputError, match="exactly 4001-4020"):
        target_v3.release_candidate(v2, floors, curve(list(range(5_000, 200_001, 5_000))), "f" * 64, "raw",
                                    record(range(5001, 5021)))
    with pytest.raises(InputError, match="no noise-floor limit"):
        target_v3.release_candidate(v2, {}, curve(list(range(5_000, 200_001, 5_000))), "f" * 64, "raw",
                                    record(CALIBRATION_SEEDS))


def test_the_angle_target_is_the_v3_rule_on_the_angle_curve():
    """CALIBRATION.md (3dgan-angle, fixed before any angle curve): the angle noise floor's sampling
    fraction, profiles, moments and angle terms and its per-bin separations of sampling fraction,
    hits and first and second moments; the last quarter of the 100,000 budget (6 evaluations);
    calibration seeds 4101-4120; no v2 to cap it; written as 3dgan-angle-quality-v2-rc."""
    v1 = quality.load_thresholds("3dgan-angle", version="3dgan-angle-quality-v1")
    names = target_v3.proposed_metrics(v1)
    assert len(names) == 4 + 4 * 8 and set(names) <= set(v1.limits) and "objective.angle" in names
    assert not any(".moment_x3." in name or name == "objective.total" for name in names)
    angle = curve(list(range(5_000, 100_001, 5_000)), 0.5, benchmark="3dgan-angle")
    assert len(target_v3.window_values(angle, "raw", names)["objective.angle"]) == 6
    rule = target_v3.RULES["3dgan-angle"]
    floors = {name: 0.001 for name in names}
    document = target_v3.release_candidate(v1, floors, angle, "f" * 64, "raw", record(rule.calibration_seeds, 0.02,
                                                                                      benchmark="3dgan-angle"))
    assert document["version"] == "3dgan-angle-quality-v2-rc" and document["benchmark"] == "3dgan-angle"
    assert {entry["set_by"] for entry in document["metrics"].values()} == {"window"}, "no cap: 1.1 x 0.5 stands"
    assert document["metrics"]["objective.angle"]["threshold"] == 0.55
    assert document["calibration"]["campaign"]["window"] == [70_000, 100_000]
    assert "tolerance bound (Gamma quantile 1 - 0.01/36" in document["description"]
    spread = record(rule.calibration_seeds, benchmark="3dgan-angle")
    for i, judged in enumerate(spread.document["seeds"].values()):
        judged["metrics"]["objective.angle"] = 0.3 + 0.02 * i  # 0.30-0.68: its bound is above 0.55
    revised = target_v3.release_candidate(v1, floors, angle, "f" * 64, "raw", spread)
    bound = threshold_from_floor(np.asarray([0.3 + 0.02 * i for i in range(20)]), len(names))[0]
    assert revised["metrics"]["objective.angle"] == {**revised["metrics"]["objective.angle"],
                                                     "threshold": bound, "set_by": "calibration seeds"}
    assert document["reproduction"]["within_samples"] == 150_000
    with pytest.raises(InputError, match="exactly 4101-4120"):
        target_v3.release_candidate(v1, floors, angle, "f" * 64, "raw", record(CALIBRATION_SEEDS, benchmark="3dgan-angle"))

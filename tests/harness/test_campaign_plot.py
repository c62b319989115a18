"""`harness reference plot` and `status`: the campaign's curve drawn to a PNG and tabled, and a
one-line error where there is nothing to show."""
import json

import pytest

from benchmark import quality
from harness.campaign_plot import gates_for, plot_campaign
from reference_model.errors import InputError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _document(points: int, benchmark: str = "3dgan") -> dict:
    thresholds = quality.load_thresholds(benchmark)
    names = list(thresholds.limits) + ["objective.total", "profile_l1.x", "profile_l1.y", "profile_l1.z"]
    return {"benchmark": benchmark, "seed": 9,
            "recipe": {"budget_samples": 60_000, "eval_every_samples": 5_000},
            "best": {"samples": 5_000 * points, "metric": "objective.total", "value": 0.5 / points} if points else None,
            "sessions": [{"started": "2026-11-28T10:00:00+00:00", "suite_commit": "a" * 40,  # no system: older
                          "samples_at_start": 0, "samples_at_stop": 12_000, "stopped": "x",
                          "samples_per_second": 9.5},
                         {"started": "2026-11-28T12:00:00+00:00", "suite_commit": "b" * 40 + "-dirty",
                          "system": "vm_testbox",
                          "samples_at_start": 12_000, "samples_at_stop": 5_000 * points, "stopped": None,
                          "samples_per_second": None}],
            "points": [{"samples": 5_000 * (i + 1), "seconds": 500.0 * (i + 1), "objective": 0.5 / (i + 1),
                        "failed": 50 - i,
                        "metrics": {name: 0.5 / (i + 1) for name in names}} for i in range(points)]}


def test_the_curve_is_drawn_to_a_png(tmp_path):
    out = plot_campaign(_document(4), quality.load_thresholds("3dgan"), tmp_path / "sub" / "curve.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    assert [p.name for p in out.parent.iterdir()] == ["curve.png"], "no temporary file is left behind"


def test_each_benchmark_is_drawn_with_what_its_own_target_rule_gates(tmp_path):
    fixed = gates_for("3dgan", quality.load_thresholds("3dgan"), 60_000, 5_000)
    assert fixed.label == "v2" and "objective.angle" not in fixed.drawn and fixed.window == (30_000, 60_000)
    angle_thresholds = quality.load_thresholds("3dgan-angle")
    angle = gates_for("3dgan-angle", angle_thresholds, 100_000, 5_000)
    assert "objective.angle" in angle.drawn and angle.window == (70_000, 100_000)
    assert "separation.moment_z2.E95-105" in angle.counted and angle.counted != fixed.counted
    out = plot_campaign(_document(4, "3dgan-angle"), angle_thresholds, tmp_path / "angle.png")
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_a_second_seed_is_drawn_against_the_release_candidate(tmp_path):
    candidate = quality.load_thresholds("3dgan", version="3dgan-quality-v2-rc")
    out = plot_campaign(_document(4), quality.load_thresholds("3dgan"), tmp_path / "seed9.png", candidate)
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_a_campaign_without_evaluations_is_a_one_line_error(tmp_path):
    with pytest.raises(InputError, match="no evaluation yet"):
        plot_campaign(_document(0), quality.load_thresholds("3dgan"), tmp_path / "curve.png")
    assert not (tmp_path / "curve.png").exists()


def test_the_cli_plots_a_committed_curve(tmp_path, monkeypatch, capsys):
    from benchmark import campaign
    from harness.cli import main

    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path)
    campaign.curve_path("3dgan", 9).write_text(json.dumps(_document(3)))
    assert main(["reference", "plot", "--seed", "9"]) == 0
    assert (tmp_path / "3dgan-reference-seed9.png").read_bytes()[:8] == PNG_MAGIC
    assert "3 evaluations" in capsys.readouterr().out


def test_status_tables_sessions_and_evaluations(tmp_path, monkeypatch, capsys):
    from benchmark import campaign
    from harness.cli import main

    monkeypatch.setattr(campaign, "CONVERGENCE_DIR", tmp_path)
    campaign.curve_path("3dgan", 9).write_text(json.dumps(_document(3)))
    assert main(["reference", "status", "--seed", "9"]) == 0
    out = capsys.readouterr().out
    assert "3 evaluations, 2 sessions" in out and "best objective.total 0.1667 at 15,000 samples" in out
    assert "trains to 90,000 samples to reproduce the reference's target" in out  # seed 9: not the reference
    assert "aaaaaaaaaaaa" in out and "9.50" in out and "not stopped" in out
    assert "not recorded" in out and "vm_testbox" in out, "each session's system, where it was recorded"
    assert main(["reference", "status", "--seed", "8"]) == 2, "no campaign: a one-line error"

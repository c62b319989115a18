"""The command line: `harness --help` lists every command, each has its own help, bare
`harness run --dry-run` prints the main job's steps without touching the disk."""
import subprocess
import sys

import pytest

from harness.cli import COMMAND_MODULES, build_parser

COMMANDS = [name for name in COMMAND_MODULES]


def harness(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True)


def test_top_level_help_lists_every_command():
    out = harness("--help").stdout
    for name in COMMANDS:
        assert name in out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command):
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([command, "--help"])
    assert exit_info.value.code == 0


def test_main_job_dry_run_prints_its_steps_and_writes_nothing(tmp_path):
    done = harness("run", "--dry-run", "--results", str(tmp_path / "root"))
    assert done.returncode == 0, done.stderr
    for step in ("inference --benchmark 3dgan ", "inference --benchmark 3dgan-angle ", "epoch-time",
                 "--ranks-per-node 2", "check --per-run", "summarize"):
        assert step in done.stdout
    assert not (tmp_path / "root").exists()


def test_model_info_reports_frozen_models():
    done = harness("model", "info", "--json")
    assert done.returncode == 0
    assert '"frozen": true' in done.stdout and '"parameters": 872948' in done.stdout


def test_many_nodes_without_a_mode_is_the_submission_set_not_the_main_job(tmp_path):
    done = harness("run", "--nodes", "2", "--ranks-per-node", "4", "--launcher", "slurm", "--dry-run",
                   "--results", str(tmp_path / "root"))
    assert done.returncode == 0, done.stderr
    assert "[main job]" not in done.stdout and "#SBATCH --nodes=2" in done.stdout
    assert "--mode tta" in done.stdout and "--mode epoch-time" in done.stdout
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("command", [("check",), ("check", "--lacking", "sys_a"), ("summarize",), ("compare",),
                                     ("regress", "--baseline", "base.json")])
def test_a_folder_above_the_results_root_is_one_line_naming_the_root(tmp_path, command):
    """Run from this repository's top, `harness check .` read results/'s folders as systems."""
    (tmp_path / "results" / "systems").mkdir(parents=True)
    (tmp_path / "results" / "results").mkdir()
    done = harness(*command, str(tmp_path))
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines()[-1].endswith(f"pass {tmp_path}/results")

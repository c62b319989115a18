"""The typed `harness run` request: one field per flag, built once at the command line, checked
when built (one-line errors naming the flag), and turned back into the flags that rebuild it
(the worker's re-entry and a batch job's step)."""
import dataclasses
import subprocess
import sys

import pytest

from benchmark.recipe import LearningRateDecay
from harness.run_request import RunRequest, run_parser, to_argv, with_changes
from reference_model.errors import InputError

# a value for every flag, none of them its default
EVERY_FLAG = ["--benchmark", "3dgan", "--mode", "epoch-time", "--data", "some/data", "--results", "out",
              "--epochs", "3", "--seed", "7", "--smoke", "--checkpoint", "g.weights.h5",
              "--precision", "mixed_bfloat16", "--dry-run", "--per-rank-batch", "4", "--learning-rate", "0.002",
              "--warmup-epochs", "1", "--eval-every-samples", "64", "--lr-decay", "1000,2000,0.5",
              "--ema-horizon-samples", "5000", "--max-steps-per-epoch", "6",
              "--train-fraction", "0.8", "--resume", "--hang-timeout", "30.5", "--export-generator", "out.weights.h5",
              "--ranks-list", "1,2,4", "--instances", "3", "--scaling-type", "weak", "--nodes", "2",
              "--ranks-per-node", "4", "--cores-per-rank", "12", "--intra-op-threads", "6",
              "--inter-op-threads", "1", "--launcher", "mpirun", "--hostfile", "hosts", "--oversubscribe",
              "--partition", "skx", "--account", "acc", "--time-limit", "01:00:00", "--submit",
              "--system-name", "sys_a", "--intra-op", "1,2", "--inter-op", "2", "--streams", "1,2",
              "--batch", "64,128", "--duration", "2.5", "--warmup-batches", "2", "--scenarios", "Offline",
              "--no-loadgen", "--loadgen-duration", "3.0", "--loadgen-queries", "16", "--server-qps", "5.0",
              "--server-latency-ms", "40.0", "--official", "--server-search", "2", "--roofline-size", "1024",
              "--target", "3dgan-quality-v1", "--no-quality-gate", "--quick"]


def test_every_flag_is_a_field_in_help_order():
    dests = [a.dest for a in run_parser()._actions if a.option_strings and a.dest != "help"]
    assert [f.name for f in dataclasses.fields(RunRequest)] == dests


def test_every_flag_is_set_by_the_round_trip_fixture():
    request = RunRequest.from_argv(EVERY_FLAG)
    defaults = RunRequest.from_argv([])
    # one benchmark has its default name; emulated ranks combine only with a 1-rank tta run and a
    # held-out set only with a run trained to the target, not with the fixture's multi-node
    # epoch-time (test_emulated_run.py and the worker test below round-trip them)
    public = [a.dest for a in run_parser()._actions if a.option_strings and a.help != "==SUPPRESS=="
              and a.dest not in ("help", "benchmark", "emulate_ranks", "heldout_data")]
    assert [name for name in public if getattr(request, name) == getattr(defaults, name)] == []


def test_flags_round_trip_through_the_request():
    request = RunRequest.from_argv(EVERY_FLAG)
    assert request.ranks_list == (1, 2, 4) and request.loadgen is False and request.hang_timeout == 30.5
    assert RunRequest.from_argv(to_argv(request)) == request
    defaults = RunRequest.from_argv([])
    assert to_argv(defaults) == [] and RunRequest.from_argv(to_argv(defaults)) == defaults


def test_a_request_is_frozen_and_changes_make_a_checked_copy():
    request = RunRequest.from_argv(["--mode", "tta"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.seed = 3
    changed = with_changes(request, seed=3, ranks_list=[1, 2])
    assert (request.seed, changed.seed, changed.ranks_list) == (0, 3, (1, 2))
    with pytest.raises(InputError, match="--precision fp8: training supports float32 or mixed_bfloat16"):
        with_changes(request, precision="fp8")


def test_the_worker_rebuilds_the_request_it_was_launched_with(tmp_path):
    from harness.data_default import TrainingData
    from harness.train_launch import worker_arguments
    from harness.train_worker import train_config

    request = RunRequest.from_argv(["--mode", "tta", "--seed", "5", "--precision", "mixed_bfloat16", "--smoke",
                                    "--eval-every-samples", "32", "--nodes", "2", "--ranks-per-node", "2",
                                    "--lr-decay", "64,128,0.1", "--ema-horizon-samples", "80",
                                    "--learning-rate", "0.0005", "--results", str(tmp_path), "--epochs", "4",
                                    "--per-rank-batch", "2", "--warmup-epochs", "0", "--train-fraction", "0.75",
                                    "--hang-timeout", "60", "--max-steps-per-epoch", "3", "--resume",
                                    "--export-generator", str(tmp_path / "g.weights.h5")])
    data = TrainingData(tmp_path / "data", tmp_path / "heldout")
    argv = worker_arguments(request, "sys_a", data, tmp_path / "r.txt", tmp_path / "r.json", tmp_path / "ckpt")
    assert argv[:5] == [sys.executable, "-m", "harness.cli", "run", "--worker"]
    rank = RunRequest.from_argv(argv[4:])
    assert rank.worker and (rank.log_file, rank.summary_file) == (str(tmp_path / "r.txt"), str(tmp_path / "r.json"))
    assert (rank.data, rank.heldout_data, rank.system_name, rank.checkpoint_dir) == (
        str(tmp_path / "data"), str(tmp_path / "heldout"), "sys_a", str(tmp_path / "ckpt"))
    config = train_config(rank)
    assert (config.data, config.eval_data) == (tmp_path / "data", tmp_path / "heldout")
    assert config.lr_decay == LearningRateDecay(64, 128, 0.1)
    assert config.judge_moving_average and config.ema_decay == pytest.approx(1 - 2 * 2 * 2 / 80)
    read_by_the_rank = ("benchmark", "mode", "results", "epochs", "seed", "per_rank_batch", "learning_rate",
                        "warmup_epochs", "train_fraction", "hang_timeout", "nodes", "ranks_per_node", "precision",
                        "eval_every_samples", "lr_decay", "ema_horizon_samples", "max_steps_per_epoch",
                        "export_generator", "smoke", "resume")
    assert {name: getattr(rank, name) for name in read_by_the_rank} == \
        {name: getattr(request, name) for name in read_by_the_rank}


def test_a_batch_job_step_rebuilds_the_request_with_absolute_paths(tmp_path, monkeypatch):
    from harness.train_launch import job_argv

    monkeypatch.chdir(tmp_path)
    request = RunRequest.from_argv(["--mode", "tta", "--nodes", "4", "--results", "rel", "--data", "d",
                                    "--batch", "64", "--no-loadgen", "--submit", "--dry-run"])
    step = job_argv(request, launcher="srun")
    assert step[0] == "run" and "--submit" not in step and "--dry-run" not in step
    rebuilt = RunRequest.from_argv(step[1:])
    assert with_changes(request, launcher="srun", submit=False, dry_run=False,
                        results=str(tmp_path / "rel"), data=str(tmp_path / "d")) == rebuilt


@pytest.mark.parametrize("argv, message", [
    (["--mode", "tta", "--precision", "int8"], "--precision int8: training supports float32 or mixed_bfloat16"),
    (["--nodes", "2", "--precision", "bfloat16"], "--precision bfloat16: training supports"),
    (["--mode", "throughput", "--instances", "1"], "--instances 1: .* one instance is a time-to-accuracy run"),
    (["--mode", "throughput", "--resume"], "--resume: a throughput instance must train uninterrupted"),
    (["--mode", "inference", "--warmup-batches", "0"], "--warmup-batches 0: at least 1 batch must run untimed"),
    (["--mode", "inference", "--server-search", "-1"], "--server-search -1: give a number of LoadGen runs"),
    (["--mode", "inference", "--roofline-size", "8"], "--roofline-size 8: too small .* use 1024 or more"),
    (["--mode", "inference", "--smoke", "--target", "3dgan-quality-v1"], "--target .* drop --smoke or"),
    (["--mode", "inference", "--no-quality-gate", "--target", "v"], "--target v: .* --no-quality-gate"),
    (["--mode", "tta", "--worker"], "--worker is how a rank re-enters .* run the benchmark without --worker"),
    (["--mode", "inference", "--worker", "--log-file", "l", "--summary-file", "s", "--checkpoint-dir", "c"],
     "--worker is how a rank re-enters"),
])
def test_inconsistent_requests_are_one_line_errors_naming_the_flag(argv, message):
    with pytest.raises(InputError, match=message) as refused:
        RunRequest.from_argv(argv)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("argv", [["--mode", "inference", "--precision", "int8"],  # an inference precision
                                  ["--precision", "bfloat16,int8"],  # the main job sets its own
                                  ["--mode", "tta", "--warmup-batches", "0", "--instances", "1"]])
def test_flags_of_other_modes_are_not_checked(argv):
    RunRequest.from_argv(argv)


def test_the_command_line_reports_a_refused_request_in_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness.cli", "run", "--mode", "inference", "--warmup-batches",
                           "0", "--dry-run", "--results", str(tmp_path / "root")], capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "harness run: error: --warmup-batches 0: at least 1 batch must run untimed (graph tracing and kernel "
        "selection happen in the first call)"]
    assert not (tmp_path / "root").exists()


def test_the_recorded_arguments_keep_the_keys_the_namespace_had():
    from harness.cli import build_parser

    namespace = build_parser().parse_args(["run", "--mode", "scaling", "--ranks-list", "1,2"])
    recorded = {k: v for k, v in vars(namespace).items() if k != "func"}
    record = RunRequest.from_namespace(namespace).record()
    assert list(record) == list(recorded)
    assert record == {k: tuple(v) if isinstance(v, list) else v for k, v in recorded.items()}


@pytest.mark.parametrize("flags, message", [
    (["--lr-decay", "200,100,0.1"], "must start before it ends"),
    (["--lr-decay", "100,200,0"], "final factor"),
    (["--lr-decay", "100,200"], "START,END,FACTOR"),
    (["--lr-decay", "100,200,0.1,4"], "START,END,FACTOR"),
])
def test_a_bad_decay_is_refused_by_the_parser(flags, message, capsys):
    with pytest.raises(SystemExit):
        RunRequest.from_argv(["--mode", "tta", *flags])
    assert message in capsys.readouterr().err


def test_a_moving_average_must_span_more_than_one_step():
    with pytest.raises(InputError, match="--ema-horizon-samples 64: .*global batch \\(64 samples\\)"):
        RunRequest.from_argv(["--mode", "tta", "--nodes", "2", "--ranks-per-node", "4", "--ema-horizon-samples", "64"])

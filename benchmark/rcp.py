"""Reference convergence points (RCPs): MLPerf's guard against a tuned or lucky early pass.

`benchmark/rcp/<benchmark>.json` holds, in mlperf-logging's RCP format, how many samples the
reference took to converge in each of its runs at each global batch: records
`"<benchmark>_ref_<BS>": {"Benchmark", "BS", "Hyperparams", "Epochs to converge", "Seeds"}`,
and, for runs that are `harness run` results, each run's log SHA-256 (`LOGS_KEY`): a result
whose runs made the RCP is never judged by it.
The counts are samples, under the format's key "Epochs to converge" as in MLPerf HPC's own
OpenFold RCPs: the checker reads that key for every HPC benchmark, and our evaluation intervals
are not data-set epochs (`Seeds` lists each run's seed beside it; the checker ignores it).

MLPerf asks the reference for twice a submission's runs at each batch (10); an RCP here may
hold fewer, down to the 3 an olympic mean needs (docs/closed-rule-study.md, "Stage 4"): the
checker's t-test bound is then wider, each record says how many runs MLPerf asks for
(`RUNS_ASKED_KEY`), and every coverage line says how many it has.

A run set is judged by mlperf-logging's own `RCP_Checker` (olympic means, the one-sided t-test
bound at alpha 0.05, pruning, interpolation between batch sizes, the normalisation of a faster
result), built on our file with the benchmark's run count registered for it, since its table
lists only MLPerf's benchmarks. Only `check_directory`'s choice between found, interpolated,
below the smallest and missing is restated (`_lookup`, `judge`), because that function reads
`result_*.txt` files from one folder and counts epochs; tests/benchmark/test_rcp.py holds the
restatement to `check_directory` on mlperf-logging's own CosmoFlow and DeepCAM RCPs.
"""
from __future__ import annotations

import io
import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np
from mlperf_logging.rcp_checker import rcp_checker

from reference_model.atomic_files import write_json_atomic
from reference_model.errors import InputError

RCP_DIR = Path(__file__).resolve().parent / "rcp"
USAGE = "hpc"
RULESET = "3.0.0"  # the latest HPC rules with RCPs; the checker's statistics are the same in every ruleset
SAMPLES_KEY = "Epochs to converge"  # the key the checker reads; it holds samples (see above)
RCP_PASS = "pruned_rcps"  # what MLPerf's package checker judges against
NOT_CONVERGED = 1e9  # what rcp_checker.read_submission_file counts for a run that did not converge
MIN_RUNS = 3  # the fewest an olympic mean (drop the lowest and the highest) can use
RUNS_ASKED_KEY = "Runs asked by MLPerf"  # twice a submission's runs; the checker ignores the key
LOGS_KEY = "Log SHA-256"  # each run's MLPerf log, where recorded, so that no run judges itself

FOUND = "RCP found"
INTERPOLATED = "RCP interpolated"
BELOW_SMALLEST = "below the smallest RCP"
MISSING = "missing RCP"
UNJUDGED = "not judged"
OWN_RUNS = "runs of the RCP"  # a result whose runs made the RCP: it fails, never judged by itself


@dataclass(frozen=True)
class Verdict:
    """A run set against the RCPs; `bound` is the fastest olympic mean accepted (samples), and
    a passing set faster than `rcp_mean` has its score multiplied by `norm_factor`."""

    status: str  # FOUND | INTERPOLATED | BELOW_SMALLEST | MISSING | OWN_RUNS | UNJUDGED
    passed: bool
    message: str  # one line, saying what to do when it did not pass
    global_batch: Optional[int] = None
    run_mean: Optional[float] = None  # olympic mean of the set's samples to converge
    rcp_mean: Optional[float] = None
    bound: Optional[float] = None
    max_speedup: Optional[float] = None
    norm_factor: float = 1.0

    def short(self) -> str:
        """The verdict in a few words, for a table cell."""
        if self.status == UNJUDGED:
            return UNJUDGED
        verdict = "pass" if self.passed else "FAIL"
        scaled = f", score x{self.norm_factor:.4g}" if self.norm_factor > 1.0 else ""
        return f"{verdict}: {self.status}{scaled}"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ReferenceRun:
    """One reference convergence run: what an RCP record is made of."""

    global_batch: int
    hyperparameters: dict
    seed: int
    samples_to_converge: int
    log_sha256: Optional[str] = None  # its MLPerf log, where it has one (a `harness run` result)


def rcp_path(benchmark: str, directory: Optional[Path] = None) -> Path:
    return Path(directory or RCP_DIR) / f"{benchmark}.json"


def load_rcps(benchmark: str, directory: Optional[Path] = None) -> dict:
    """The benchmark's RCP records, checked ({} while no reference convergence runs exist)."""
    path = rcp_path(benchmark, directory)
    try:
        records = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: missing; every benchmark has an RCP file ({{}} until its reference "
                         "convergence runs exist): restore it from the repository") from None
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not JSON ({err}); restore it from the repository") from None
    if not isinstance(records, dict):
        raise InputError(f"{path}: an object of RCP records is expected; restore it from the repository")
    batches = set()
    for name, record in records.items():
        samples = record.get(SAMPLES_KEY) if isinstance(record, dict) else None
        if (not isinstance(record, dict) or record.get("Benchmark") != benchmark
                or not isinstance(record.get("BS"), int) or record["BS"] < 1 or record["BS"] in batches
                or not isinstance(record.get("Hyperparams"), dict) or not isinstance(samples, list)
                or len(samples) < 3 or not all(isinstance(s, (int, float)) and s > 0 for s in samples)):
            raise InputError(f"{path}: record {name!r} is not an RCP of {benchmark} (Benchmark, a new positive "
                             f"BS, Hyperparams, '{SAMPLES_KEY}' with 3 or more sample counts); restore it from the "
                             "repository, and add RCPs with `harness rcp ROOT --write`")
        batches.add(record["BS"])
    return records


@contextmanager
def _registered(benchmark: str, submission_runs: int) -> Iterator[None]:
    """The checker's run-count table, with `benchmark` in it while the checker is built."""
    table = rcp_checker.submission_runs[USAGE]
    before = table.get(benchmark)
    table[benchmark] = submission_runs
    try:
        yield
    finally:
        if before is None:
            del table[benchmark]
        else:
            table[benchmark] = before


def _checker(benchmark: str, records: dict, submission_runs: int) -> rcp_checker.RCP_Checker:
    """mlperf-logging's checker on our records (their statistics computed and pruned as it does)."""
    with _registered(benchmark, submission_runs):
        return rcp_checker.RCP_Checker(USAGE, RULESET, benchmark, False, io.StringIO(json.dumps(records)))


def _lookup(benchmark: str, global_batch: int, submission_runs: int, directory: Optional[Path]
            ) -> tuple[Optional[rcp_checker.RCP_Checker], str, Optional[dict], str]:
    """(checker, status, record, message): the RCP that judges `global_batch`, chosen as
    check_directory chooses it; where none does, record is None and the message says what to add."""
    records = load_rcps(benchmark, directory)
    must_add = (f"the submitter must add the RCP runs at global batch {global_batch} (at least "
                f"{MIN_RUNS} converged reference runs, MLPerf asks for {2 * submission_runs}: closed "
                f"time-to-accuracy runs at that batch, each from its own seed, added to "
                f"{rcp_path(benchmark, directory)} by `harness rcp ROOT --write`)")
    if not records:
        return None, MISSING, None, f"{MISSING}: no reference convergence points for {benchmark} yet; {must_add}"
    checker = _checker(benchmark, records, submission_runs)
    found = checker._find_rcp(global_batch, RCP_PASS)
    if found is not None:
        return checker, FOUND, found, ""
    low = checker._find_top_min_rcp(global_batch, RCP_PASS)
    high = checker._find_bottom_max_rcp(global_batch, RCP_PASS)
    if low is not None and high is not None:
        return checker, INTERPOLATED, checker._create_interp_rcp(global_batch, low, high)[1], ""
    if high is not None:
        smallest = checker._find_min_rcp(RCP_PASS)
        return checker, BELOW_SMALLEST, smallest, (f"{MISSING} at global batch {global_batch}, below the smallest "
                                                   f"RCP ({smallest['BS']}) and faster than it; {must_add}")
    largest = max(r["BS"] for r in records.values())
    return (checker, MISSING, None,
            f"{MISSING} at global batch {global_batch} (above the largest RCP, {largest}); {must_add}")


def coverage(benchmark: str, global_batch: int, submission_runs: int, directory: Optional[Path] = None) -> str:
    """Whether an RCP covers `global_batch`, in one line; where none does, what the submitter must add."""
    _, status, record, missing = _lookup(benchmark, global_batch, submission_runs, directory)
    if record is None:
        return missing
    runs = len(record[SAMPLES_KEY])
    made = f"{runs} reference run{'s' if runs > 1 else ''}, MLPerf asks for {2 * submission_runs}; " if runs else ""
    return (f"{status} for global batch {global_batch}: runs must converge in at least "
            f"{record['Min Epochs']:.6g} samples on average (RCP mean {record['RCP Mean']:.6g}, "
            f"{made}max speed-up {record['Max Speedup']:.4g}x)"
            + ("; a slower set passes, a faster one needs the RCP runs at its batch"
               if status == BELOW_SMALLEST else ""))


def judge(benchmark: str, global_batch: Optional[int], samples: Sequence[Optional[float]],
          submission_runs: int, directory: Optional[Path] = None, log_sha256s: Sequence[str] = ()) -> Verdict:
    """A time-to-accuracy run set against the RCPs, as MLPerf's package checker judges a closed
    result: `samples` are each run's samples to converge (None: it did not converge);
    `log_sha256s`, its runs' logs, are refused where an RCP holds them (a run never judges itself)."""
    if global_batch is None:
        return Verdict(UNJUDGED, False, "the runs' logs do not give one global_batch_size")
    reused = {record["BS"]: overlap for record in load_rcps(benchmark, directory).values()
              if (overlap := set(log_sha256s) & set(record.get(LOGS_KEY, [])))}
    if reused:
        batch, overlap = min(reused.items())
        return Verdict(OWN_RUNS, False, f"{len(overlap)} of its runs are reference runs of the RCP at global batch "
                                        f"{batch} ({rcp_path(benchmark, directory)}): a run never judges itself; "
                                        "submit runs made apart from the RCP's", global_batch)
    failed = sum(s is None for s in samples)
    if failed > 1:
        return Verdict(UNJUDGED, False, f"insufficient convergence: {failed} runs did not converge", global_batch)
    if len(samples) < 3:
        return Verdict(UNJUDGED, False, f"{len(samples)} run(s): an olympic mean needs 3 or more", global_batch)
    checker, status, record, missing = _lookup(benchmark, global_batch, submission_runs, directory)
    if record is None:
        return Verdict(MISSING, False, missing, global_batch)
    counted = [NOT_CONVERGED if s is None else float(s) for s in samples]
    passed, norm_factor = checker._eval_submission_record(record, counted, "")  # sorts `counted`
    run_mean = float(np.mean(counted[1:-1]))
    if status == BELOW_SMALLEST and not passed:
        return Verdict(MISSING, False, missing, global_batch, run_mean)
    message = (f"{status} at global batch {global_batch}: {'pass' if passed else 'FAIL'}, olympic mean "
               f"{run_mean:.6g} samples to converge {'>=' if passed else '<'} the bound {record['Min Epochs']:.6g} "
               f"(RCP mean {record['RCP Mean']:.6g} / max speed-up {record['Max Speedup']:.4g}x)")
    if passed and norm_factor > 1.0:
        message += f"; faster than the RCP mean, so the score is normalised x{norm_factor:.4g}"
    elif not passed:
        message += "; converges faster than the reference allows"
    return Verdict(status, bool(passed), message, global_batch, run_mean, float(record["RCP Mean"]),
                   float(record["Min Epochs"]), float(record["Max Speedup"]),
                   float(norm_factor) if passed else 1.0)


def rcp_records(benchmark: str, runs: Sequence[ReferenceRun], submission_runs: int) -> dict:
    """The RCP records of reference convergence runs, one per global batch. Every run at a batch
    shares its hyper-parameters and has its own seed; there are at least MIN_RUNS of them (MLPerf
    asks for twice the runs a submission makes, which the record states)."""
    batches: dict[int, list[ReferenceRun]] = {}
    for run in runs:
        batches.setdefault(run.global_batch, []).append(run)
    records = {}
    for batch, members in sorted(batches.items()):
        where = f"reference runs of {benchmark} at global batch {batch}"
        logged = sorted({m.hyperparameters.get("global_batch_size", batch) for m in members} - {batch})
        if logged:
            raise InputError(f"{where}: hyper-parameters say global_batch_size {logged[0]}; give the batch "
                             "the runs trained at")
        hyperparameters = {**members[0].hyperparameters, "global_batch_size": batch}
        if any({**m.hyperparameters, "global_batch_size": batch} != hyperparameters for m in members):
            raise InputError(f"{where}: their hyper-parameters differ; an RCP is one recipe, give each its own batch")
        seeds = [m.seed for m in members]
        if len(set(seeds)) < len(seeds):
            raise InputError(f"{where}: seeds {sorted(seeds)} repeat; each run trains from its own seed")
        if len(members) < MIN_RUNS:
            raise InputError(f"{where}: {len(members)} run(s), at least {MIN_RUNS} needed for an olympic mean "
                             f"(MLPerf asks for {2 * submission_runs}); run the rest first")
        if not all(isinstance(m.samples_to_converge, int) and m.samples_to_converge > 0 for m in members):
            raise InputError(f"{where}: samples to converge must be positive integers; a run that did not "
                             "converge has none: extend its budget or rerun it")
        record = {"Benchmark": benchmark, "BS": batch, "Hyperparams": hyperparameters,
                  SAMPLES_KEY: [m.samples_to_converge for m in members], "Seeds": seeds,
                  RUNS_ASKED_KEY: 2 * submission_runs}
        if all(m.log_sha256 for m in members):
            record[LOGS_KEY] = [m.log_sha256 for m in members]
        records[f"{benchmark}_ref_{batch}"] = record
    return records


def add_reference_runs(benchmark: str, runs: Sequence[ReferenceRun], submission_runs: int,
                       directory: Optional[Path] = None) -> Path:
    """Add the RCPs of `runs` to the benchmark's file. An RCP is never replaced: a batch that
    already has one is refused (judging by numbers that moved would be judging by new rules)."""
    existing = load_rcps(benchmark, directory)
    added = rcp_records(benchmark, runs, submission_runs)
    taken = sorted({r["BS"] for r in existing.values()} & {r["BS"] for r in added.values()})
    if taken:
        raise InputError(f"{rcp_path(benchmark, directory)}: global batch {', '.join(map(str, taken))} already "
                         "has an RCP; RCPs are never replaced, leave those runs out")
    merged = dict(sorted({**existing, **added}.items(), key=lambda item: item[1]["BS"]))
    return write_json_atomic(rcp_path(benchmark, directory), merged)


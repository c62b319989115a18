"""`harness run --mode inference`: roofline, physics gate per precision, sweep, then LoadGen.

Order of work, and why:
1. measure the machine's float32/bfloat16 matmul roofline (for MFU);
2. for each precision, prepare its model (int8: quantise) and run the quality gate on showers it
   generates; a precision that fails is reported FAILED with its failing metrics and is never
   timed, so a fast model with wrong physics can never appear as fast;
3. sweep threads x streams x batch over the precisions that passed (pinned stream processes);
4. run LoadGen's scenarios for each passing precision at its fastest sweep point (streams, batch,
   threads per stream; several streams run as pinned processes behind one SUT; Server at the
   fastest point whose batch latency fits its fixed latency bound), logs and `result.json`,
   which records that point, into the results tree (`harness.results`).
`--no-quality-gate` skips step 2 for tuning the software path only: every number is labelled
"ungated" and nothing it writes is submittable.
"""
from __future__ import annotations

import argparse
import csv
import io
import math
import shutil
from dataclasses import replace
from pathlib import Path

from benchmark import vocabulary
from reference_model.errors import InputError
from harness.arguments import int_list, positive_float
from harness.run_request import RunRequest, with_changes
from harness.sigterm_action import sigterm_runs

DEFAULT_BATCHES = [128]
DEFAULT_INTER_OP = [1]
QUICK = {"duration": 3.0, "loadgen_duration": 2.0, "loadgen_queries": 32, "roofline_size": 2048}


def add_arguments(parser) -> None:
    """The inference-only flags. `--precision`, `--benchmark`, `--results`, `--seed`, `--data`,
    `--checkpoint`, `--smoke`, `--dry-run` and `--system-name` come from `harness run`."""
    parser.add_argument("--intra-op", type=int_list, default=None, metavar="LIST",
                        help="intra-op threads per stream to sweep, e.g. 1,2; unset: the cores each "
                             "stream is pinned to")
    parser.add_argument("--inter-op", type=int_list, default=DEFAULT_INTER_OP, metavar="LIST",
                        help="inter-op threads per stream to sweep")
    parser.add_argument("--streams", type=int_list, default=None, metavar="LIST",
                        help="concurrent model instances to sweep; each is a process pinned to its own "
                             "cores; unset: 1, 2, 4, ... up to the core count")
    parser.add_argument("--batch", type=int_list, default=DEFAULT_BATCHES, metavar="LIST",
                        help="showers per batch to sweep")
    parser.add_argument("--duration", type=positive_float, default=10.0, metavar="S",
                        help="timed seconds per sweep point, after warm-up")
    parser.add_argument("--warmup-batches", type=int, default=3, metavar="N",
                        help="untimed batches per stream before timing starts")
    parser.add_argument("--scenarios", default=None, metavar="LIST",
                        help="LoadGen scenarios to run from Offline, SingleStream, MultiStream, Server; unset: all")
    parser.add_argument("--loadgen", action=argparse.BooleanOptionalAction, default=True,
                        help="run the LoadGen scenarios after the sweep")
    parser.add_argument("--loadgen-duration", type=positive_float, default=10.0, metavar="S",
                        help="LoadGen min_duration per scenario in seconds (MLPerf's official minimum "
                             "is 600; shorter runs are recorded as not meeting it)")
    parser.add_argument("--loadgen-queries", type=int, default=None, metavar="N",
                        help="LoadGen min_query_count; unset: SingleStream 256, MultiStream 662, "
                             "Server 662 (enough for LoadGen's early-stopping estimate)")
    parser.add_argument("--server-qps", type=positive_float, default=None, metavar="QPS",
                        help="Server scenario arrival rate; unset: half the calibrated batch throughput")
    parser.add_argument("--server-latency-ms", type=positive_float, default=None, metavar="MS",
                        help="Server scenario 99th-percentile latency bound, for exploration: a run "
                             "under any bound but the benchmark's fixed one (3dgan 250 ms, 3dgan-angle "
                             "2,500 ms; rules.md section 9) is not submittable; unset: the fixed one")
    parser.add_argument("--official", action="store_true",
                        help="LoadGen at MLPerf Inference's official minimums: 600 s per scenario and "
                             "the official query counts (overrides --loadgen-duration/--loadgen-queries)")
    parser.add_argument("--server-search", type=int, default=0, metavar="N",
                        help="Server scenario: bisect the target QPS over N LoadGen runs for the highest "
                             "rate whose latency bound holds (0: one run at --server-qps); with --official "
                             "the N trials last --loadgen-duration, then official-length runs start at "
                             "the highest rate a trial passed and bisect to 5%% (at most 6, rules.md "
                             "section 9); the highest VALID one is the result")
    parser.add_argument("--roofline-size", type=int, default=4096, metavar="N",
                        help="matrix size of the matmul roofline measurement")
    parser.add_argument("--target", metavar="VERSION", default=None,
                        help="check the checkpoint against this registered thresholds version instead of "
                             "the benchmark's target (a release candidate, say: nothing written is then "
                             "submittable); precisions are compared with float32 at its noise-floor limits")
    parser.add_argument("--no-quality-gate", action="store_true",
                        help="skip the physics gate (software tuning only): numbers are labelled "
                             "'ungated' and nothing written is submittable")
    parser.add_argument("--quick", action="store_true",
                        help="a short sweep for the main job: 3 s per point, 2 s LoadGen scenarios "
                             "with 32 queries (LoadGen may then call them INVALID), 2048 roofline")


# -- what runs -------------------------------------------------------------------------------
def _apply_quick(request: RunRequest) -> RunRequest:
    if not request.quick:
        return request
    return with_changes(request, duration=min(request.duration, QUICK["duration"]),
                        loadgen_duration=min(request.loadgen_duration, QUICK["loadgen_duration"]),
                        loadgen_queries=request.loadgen_queries or QUICK["loadgen_queries"],
                        roofline_size=min(request.roofline_size, QUICK["roofline_size"]))


def resolve_checkpoint(request: RunRequest, workdir: Path) -> tuple[Path, dict]:
    """The generator to run and where it came from: --checkpoint, the frozen one, or an
    untrained generator (saved once so every stream loads the same weights), labelled so. A given
    or frozen file is hashed here, so a damaged one stops the run before the roofline is measured."""
    from reference_model.checkpoint import (frozen_checkpoint, read_card, resolve_checkpoint as resolve,
                                            sidecar_path, verified_card)
    from reference_model.shared_lock import make_once

    if request.checkpoint:
        path = resolve(Path(request.checkpoint))
        card = verified_card(path)
        if card.get("benchmark") != request.benchmark:
            raise InputError(f"--checkpoint {path}: a {card.get('benchmark')} generator, but --benchmark "
                             f"is {request.benchmark}; pass a {request.benchmark} checkpoint")
        return path, {"kind": "given", "path": str(path), "sha256": card.get("sha256")}
    frozen = frozen_checkpoint(request.benchmark)
    if frozen.is_file():
        return frozen, {"kind": "frozen", "path": str(frozen), "sha256": verified_card(frozen).get("sha256")}
    path = workdir / f"untrained-{request.benchmark}-seed{request.seed}-generator.weights.h5"

    def save() -> None:
        import keras

        from reference_model.checkpoint import save_generator
        from reference_model.specs import get_spec

        spec = get_spec(request.benchmark)
        keras.utils.set_random_seed(request.seed)
        save_generator(path, spec.build_generator(), spec, {"untrained": True, "seed": request.seed})

    make_once(path, sidecar_path(path).is_file, save)  # the sidecar is written last
    print(f"[inference] no frozen checkpoint at {frozen}: running an UNTRAINED generator "
          f"(random weights, seed {request.seed}); its showers will fail the physics gate", flush=True)
    return path, {"kind": "untrained", "path": str(path), "seed": request.seed,
                  "sha256": read_card(path).get("sha256")}


REFERENCE_SEED_OFFSET = 1000  # the default reference set's seed: the run's seed + this (as the main job)


def _reference_showers(request: RunRequest, thresholds):
    """Reference showers for the checkpoint's target check: with --data, its held-out split (the
    one the trainer evaluates on); without, a stand-in set made for evaluation alone, from an
    independent seed and sized for the gate (`evaluation_events`)."""
    from benchmark import quality
    from harness.data_default import default_data_dir, ensure_standin
    from reference_model import data
    from reference_model.specs import get_spec

    role = "reference"
    if request.data:
        _, files = data.split_files(data.list_files(request.data), request.train_fraction)
        role = (f"--data's held-out split (the files after --train-fraction {request.train_fraction:g}; "
                "a lower fraction holds out more)")
    else:
        geometry = get_spec(request.benchmark).geometry
        seed = request.seed + REFERENCE_SEED_OFFSET
        directory = ensure_standin(default_data_dir(Path(request.results), geometry, seed), geometry, seed,
                                   events=thresholds.evaluation_events)
        files = data.list_files(directory)
    return quality.load_evaluation_showers(files, thresholds, role)


def _plan(request, points, scenarios, precisions) -> None:
    print(f"[inference] {request.benchmark}: {len(points)} sweep points, precisions {','.join(precisions)}, "
          f"{request.duration:g} s each; LoadGen {','.join(scenarios) if request.loadgen else 'off'}")
    for point in points:
        print(f"  {point.label()}")


def run(request: RunRequest) -> int:
    from benchmark.inference import available_cores, build_grid, default_streams
    from benchmark.loadgen_runner import parse_scenarios
    from benchmark.precision import parse_precisions

    request = _apply_quick(request)  # --warmup-batches, --server-search, --roofline-size: checked by the request
    precisions = parse_precisions(request.precision)
    scenarios = parse_scenarios(request.scenarios)
    cores = available_cores()
    points = build_grid(precisions, request.batch, request.streams or default_streams(len(cores)),
                        request.intra_op, request.inter_op, len(cores))
    _plan(request, points, scenarios, precisions)
    if request.dry_run:
        return 0
    return _run(request, precisions, scenarios, points, cores)


def _run(request, precisions, scenarios, points, cores) -> int:
    from benchmark import precision as prec
    from benchmark.inference import (GEANT4_MS_PER_SHOWER, GEANT4_SOURCE, SLIDES_3DGAN, TIMED_STATUSES,
                                     run_sweep, sweep_table)
    from benchmark.roofline import inference_flops_per_sample, measure_rooflines
    from harness import results
    from reference_model.specs import get_spec

    # this process runs the roofline, the gate and LoadGen: all cores, before any TF op
    intra_op, inter_op = prec.configure_threads(len(cores), 1)
    threads = {"intra_op_threads": intra_op or len(cores), "inter_op_threads": inter_op}
    spec = get_spec(request.benchmark)
    recorder = results.Recorder.open(Path(request.results), request.system_name)
    recorder.describe_system()
    workdir = recorder.checkpoint_dir(request.benchmark, vocabulary.INFERENCE)
    workdir.mkdir(parents=True, exist_ok=True)
    checkpoint, provenance = resolve_checkpoint(request, workdir)

    thresholds = reference = None
    if not request.no_quality_gate:
        from benchmark import quality

        thresholds = quality.load_thresholds(request.benchmark, smoke=request.smoke, version=request.target)
        reference = _reference_showers(request, thresholds)

    print(f"[inference] roofline: {request.roofline_size}^2 matmul, float32 and bfloat16", flush=True)
    rooflines = measure_rooflines(size=request.roofline_size)
    for roof in rooflines.values():
        print(f"[inference] roofline {roof.precision}: {roof.gflops:,.0f} GFLOP/s "
              f"(median {roof.median_gflops:,.0f})", flush=True)
    flops = inference_flops_per_sample(spec)

    artifacts, runners = {}, {}
    for precision in dict.fromkeys([prec.FLOAT32, *precisions]):  # float32: the paired reference
        print(f"[inference] {precision}: preparing ({prec.RUNTIMES[precision]})", flush=True)
        artifacts[precision] = prec.prepare(precision, checkpoint, workdir, request.seed)
        runners[precision] = prec.load_runner(precision, artifacts[precision], spec)
    executed = _executed_flops(runners[prec.FLOAT32])
    target, gates = _physics_checks(request, runners, precisions, thresholds, reference)

    gate_passed = {p: (gates[p].passed if p in gates else None) for p in precisions}
    failed = {p: f"differs from float32: {g.summary}" for p, g in gates.items() if not g.passed}
    sweep = run_sweep(points, request.benchmark, artifacts, gate_passed, flops,
                      {p: r.gflops for p, r in rooflines.items()}, request.duration, request.warmup_batches,
                      request.seed, failed, target_passed=None if target is None else target.passed,
                      executed_flops_per_shower=executed,
                      target_submittable=thresholds is None or thresholds.submittable)

    submittable = bool(not request.smoke and not request.no_quality_gate and provenance["kind"] != "untrained"
                       and target is not None and target.passed and thresholds.submittable)
    skipped = "skipped (--no-quality-gate): numbers are ungated"
    context = {"command": results.harness_command(), "checkpoint": provenance,
               "cores": cores, "flops_per_shower": flops, "executed_flops_per_shower": executed,
               "submittable": submittable,
               "rooflines": {p: r.to_dict() for p, r in rooflines.items()},
               prec.TARGET_CHECK: target.to_dict() if target else skipped,
               prec.PAIRED_CHECK: {p: g.to_dict() for p, g in gates.items()} if gates else skipped,
               "runtimes": {p: runners[p].runtime for p in precisions},
               "inference_graph": {p: runners[p].provenance for p in precisions},
               "geant4_reference": {"ms_per_shower": GEANT4_MS_PER_SHOWER, "source": GEANT4_SOURCE},
               "duration_s": request.duration, "warmup_batches": request.warmup_batches,
               "streams_are": "processes pinned to disjoint cores (os.sched_setaffinity)"}
    sweep_path = recorder.write_sweep(request.benchmark, [r.row() for r in sweep], context)
    results.write_text_atomic(sweep_path.with_suffix(".csv"), _csv([r.row() for r in sweep]))

    print("\n" + sweep_table(sweep))
    _print_headline(sweep, rooflines, GEANT4_SOURCE, SLIDES_3DGAN, provenance, request.benchmark)
    if thresholds is not None and not thresholds.submittable:
        print(f"[inference] the checkpoint was checked against {thresholds.name}, which is not submittable: "
              "no figure here is a result", flush=True)
    print(f"[inference] sweep written to {sweep_path} (+ .txt, .csv)")

    loadgen_failures = 0
    if request.loadgen:
        for precision in precisions:
            if gate_passed[precision] is False:
                print(f"[inference] LoadGen skipped for {precision}: its showers differ from float32's")
                continue
            quality = _quality_record(target, gates.get(precision))
            loadgen_failures += _run_loadgen(request, recorder, precision, runners[precision],
                                             artifacts[precision], sweep, scenarios, quality, provenance,
                                             threads, submittable)
    measured = [r for r in sweep if r.status in TIMED_STATUSES]
    errors = [r for r in sweep if r.status == "error"]
    target_missed = target is not None and not target.passed
    ok = measured and not failed and not errors and not loadgen_failures and not target_missed
    return 0 if ok else 1


def _executed_flops(runner) -> int:
    """Multiply-add FLOPs per shower of the graph that actually runs (the rewrite executes fewer
    than the frozen model's, which MFU counts)."""
    from reference_model.fingerprint import flops_per_sample

    return flops_per_sample(runner.generator)


def _physics_checks(request, runners: dict, precisions: list[str], thresholds, reference):
    """(a) the checkpoint in float32 against reference data under the benchmark's target, and
    (b) every precision against float32 from the same inputs, at the target's noise-floor limits;
    None / {} with --no-quality-gate."""
    from benchmark import precision as prec

    if thresholds is None:
        return None, {}
    float32 = runners[prec.FLOAT32]
    target = prec.gate(float32, reference, thresholds, seed=request.seed)
    print(f"[inference] (a) checkpoint target {thresholds.name}, float32 against reference data: "
          f"{'PASSED' if target.passed else 'NOT MET'} ({target.summary})", flush=True)
    return target, precision_gates(runners, precisions, thresholds, request.seed)


def precision_gates(runners: dict, precisions: list[str], thresholds, seed: int,
                    tag: str = "[inference] (b)") -> dict:
    """Check (b), the precision gate: each precision's showers against float32's
    (`runners["float32"]`) from the same latents and conditions, at the target's noise-floor
    limits. `harness score` gates its low-precision workloads with this same check."""
    from benchmark import precision as prec
    from benchmark.quality import noise_floor_thresholds

    floor = noise_floor_thresholds(thresholds)
    paired = prec.paired_reference(runners[prec.FLOAT32], floor, seed=seed)
    gates = {}
    for precision in precisions:
        gates[precision] = prec.paired_gate(runners[precision], paired, floor, seed=seed)
        print(f"{tag} {precision} against float32, same latents, {floor.name} limits: "
              f"{'PASSED' if gates[precision].passed else 'FAILED'} ({gates[precision].summary})",
              flush=True)
    return gates


def _quality_record(target, gate) -> dict:
    """The LoadGen summary's `quality`: `passed` only when (a) and (b) both pass; each apart."""
    from benchmark import precision as prec

    if target is None or gate is None:
        return {"passed": None, "skipped": "--no-quality-gate"}
    return {"passed": bool(target.passed and gate.passed), prec.TARGET_CHECK: target.to_dict(),
            prec.PAIRED_CHECK: gate.to_dict()}


def _csv(rows: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]) if rows else [])
    writer.writeheader()
    for row in rows:
        writer.writerow(row)
    return out.getvalue()


def _print_headline(sweep, rooflines, geant4_source: str, slides: str, provenance: dict,
                    benchmark: str) -> None:
    from benchmark.inference import SLIDES_CORE_MS_PER_SHOWER, TIMED_STATUSES

    measured = [r for r in sweep if r.status in TIMED_STATUSES]
    if not measured:
        print("[inference] no precision passed the quality gate: no throughput is reported")
        return
    best = min(measured, key=lambda r: r.ms_per_shower)
    label = {"measured": "", "ungated": " [UNGATED: physics not checked, not a result]",
             "below-target": " [checkpoint misses the benchmark target: not a result]",
             "candidate-target": " [checkpoint meets a target that is not submittable: not a result]"}[best.status]
    if provenance["kind"] == "untrained":
        label += " [untrained generator]"
    print(f"[inference] best: {best.ms_per_shower:.3f} ms/shower ({best.showers_per_second:,.1f} showers/s) "
          f"at {best.point.label()}{label}")
    caveat = ("" if benchmark == "3dgan" else
              " (that figure is for fixed-angle showers: indicative only for 51x51x25 angle showers)")
    print(f"[inference] speed-up vs Geant4: {best.speedup_vs_geant4:,.0f}x against {geant4_source}{caveat}")
    print(f"[inference] for comparison, {slides}")
    for result in measured:
        cores = sum(len(c) for c in result.stream_cores)
        print(f"[inference] per core {result.point.label()}: {result.ms_per_shower * cores:.2f} core-ms "
              f"per shower on {cores} cores (slides, 48 cores: " + ", ".join(
                  f"{v:.0f} core-ms at {k}" for k, v in SLIDES_CORE_MS_PER_SHOWER.items()) + ")")
    for result in measured:
        if result.mfu is not None:
            print(f"[inference] MFU {result.point.label()}: {result.mfu:.1%} of the measured "
                  f"{rooflines[result.point.precision].gflops:,.0f} GFLOP/s {result.point.precision} roofline "
                  f"(model FLOPs; the FLOPs the graph executes: {result.executed_utilisation:.1%})")


def _best_point(sweep, precision: str, max_batch_latency_ms: float = math.inf):
    """The precision's fastest timed sweep point (streams, batch, threads) whose 99th-percentile
    batch latency is at most `max_batch_latency_ms`: what its LoadGen runs use (issue 24: the
    sweep's best setting, not always one stream); None without one."""
    timed = [r for r in sweep if r.point.precision == precision and r.showers_per_second
             and (r.batch_latency_ms.get("p99") or math.inf) <= max_batch_latency_ms]
    return max(timed, key=lambda r: r.showers_per_second) if timed else None


def _setting(best, request) -> dict:
    """A sweep point as LoadGen's SUT setting (the first --batch without a timed point)."""
    if best is None:
        return {"max_batch": request.batch[0]}
    return {"max_batch": best.point.batch, "streams": best.point.streams, "intra_op": best.point.intra_op,
            "inter_op": best.point.inter_op}


def server_batch_limit_ms(benchmark: str, server_latency_ms) -> float:
    """The longest batch a Server setting may take: a share of the latency bound it is held to
    (the benchmark's fixed one unless --server-latency-ms explores another)."""
    from benchmark.loadgen_runner import SERVER_BATCH_SHARE_OF_BOUND, server_latency_bound_ms

    return SERVER_BATCH_SHARE_OF_BOUND * (server_latency_ms or server_latency_bound_ms(benchmark))


def scenario_point(point: dict, scenario: str) -> dict:
    """The setting a scenario runs at, from the sweep's best point. SingleStream keeps one query
    in flight, so further streams would idle: it gets one stream with all of the point's threads
    (streams x intra-op). Offline and Server run the point as measured."""
    if scenario != "SingleStream" or point.get("streams", 1) == 1:
        return point
    return {**point, "streams": 1, "intra_op": point["streams"] * point["intra_op"]}


def _server_search(request, runner, config, log_dir: Path, best, artifact: Path):
    """Bisect between 5% and 100% of the throughput the sweep measured at the chosen point."""
    from benchmark.loadgen_runner import search_server_qps

    if best is None:
        raise RuntimeError("no timed sweep point of this precision to bound the QPS search")
    rate = best.showers_per_second
    return search_server_qps(runner, config, log_dir, request.server_search, 0.05 * rate, rate,
                             artifact=artifact)


def _trial_config(config, request):
    """A Server search's trials: with --official they run at --loadgen-duration/--loadgen-queries
    (they only bracket the rate; official-length runs then search from the rates they passed,
    rules.md section 9), else as every other run."""
    if not request.official:
        return config
    return replace(config, min_duration_ms=int(request.loadgen_duration * 1000),
                   min_query_count=request.loadgen_queries)


def _run_loadgen(request, recorder, precision: str, runner, artifact: Path, sweep, scenarios,
                 quality: dict, provenance: dict, threads: dict, submittable: bool) -> int:
    """LoadGen's scenarios for one precision at its best sweep point; returns how many could not
    be run."""
    from benchmark.loadgen_runner import LoadGenConfig, official_server_runs, run_scenario, server_bound_mismatch
    from harness import results

    failures = 0
    for scenario in scenarios:
        limit_ms = (server_batch_limit_ms(request.benchmark, request.server_latency_ms)
                    if scenario == vocabulary.SERVER else math.inf)
        best = _best_point(sweep, precision, limit_ms)
        if best is None and _best_point(sweep, precision) is not None:
            print(f"[inference] LoadGen Server {precision} not run: no swept setting's 99th-percentile batch "
                  f"latency is within {limit_ms:,.0f} ms, a third of the Server latency bound; sweep smaller "
                  "batches (e.g. --batch 16,32,64)", flush=True)
            failures += 1
            continue
        point = scenario_point(_setting(best, request), scenario)
        batch, streams = point["max_batch"], point.get("streams", 1)
        run = recorder.reserve_inference(request.benchmark, scenario)
        shared = {**point, "server_target_qps": request.server_qps,
                  "server_latency_ms": request.server_latency_ms, "seed": request.seed}
        config = (LoadGenConfig.official(scenario, **shared) if request.official else
                  LoadGenConfig(scenario=scenario, min_duration_ms=int(request.loadgen_duration * 1000),
                                min_query_count=request.loadgen_queries, **shared))
        print(f"[inference] LoadGen {scenario} ({precision}, {streams} stream(s), max batch {batch}, "
              f"min {config.min_duration_ms} ms) -> {run.directory}", flush=True)
        search = None
        ran = {"settings": {"precision": precision, "batch_size": batch, "streams": streams}}

        def stopped() -> None:  # SIGTERM: the run is kept as an attempt, its number used
            if run.directory.is_dir():
                recorder.abort_inference(run, f"stopped by SIGTERM during LoadGen {scenario}", ran)
                print(f"[inference] LoadGen {scenario} stopped by SIGTERM: recorded as aborted in "
                      f"{run.final_directory}", flush=True)

        try:
            with sigterm_runs(stopped):
                if scenario == "Server" and request.server_search:
                    search = _server_search(request, runner, _trial_config(config, request), run.directory,
                                            best, artifact)
                    if search.best is None:
                        raise RuntimeError(f"no target QPS met the latency bound in {len(search.trials)} runs")
                    outcome = search.best
                    if request.official:  # rules.md section 9's official-length search from the trials' rates
                        outcome = official_server_runs(runner, config, search, run.directory, artifact)
                    for name in results.LOADGEN_LOGS:  # the result's logs are the chosen run's
                        shutil.copy2(Path(outcome.log_dir) / name, run.directory / name)
                else:
                    outcome = run_scenario(runner, config, run.directory, artifact=artifact)
        except RuntimeError as err:
            searched = {"server_search": search.to_dict() if search else None}
            path = recorder.abort_inference(run, str(err), {**ran, **searched})
            print(f"[inference] LoadGen {scenario} failed: {err} (recorded as aborted in {path.parent})", flush=True)
            failures += 1
            continue
        fixed_bound = (scenario != vocabulary.SERVER or not server_bound_mismatch(
            request.benchmark, outcome.settings.get("server_target_latency_ms")))
        summary = {"status": "success", "submittable": submittable and outcome.official_minimum and fixed_bound,
                   "command": results.harness_command(),
                   "samples_per_second": outcome.samples_per_second, "valid": outcome.valid,
                   "verdict": outcome.verdict, "latency_ns": outcome.latency_ns,
                   "settings": {**threads, **_stream_settings(outcome.settings),
                                "batch_size": batch, "precision": precision,
                                "runtime": runner.runtime},
                   "min_duration_ms": config.min_duration_ms,
                   "official_minimum": outcome.official_minimum, "quality": quality,
                   "checkpoint": provenance, "loadgen": outcome.to_dict(),
                   "server_search": search.to_dict() if search else None}
        path = recorder.finish_inference(run, summary)
        rate = "n/a" if outcome.samples_per_second is None else f"{outcome.samples_per_second:,.1f}"
        print(f"[inference] LoadGen {scenario} {precision}: Result is : {outcome.verdict} "
              f"({rate} samples/s; {', '.join(f'{k}: {v}' for k, v in outcome.checks.items())}) "
              f"-> {path.parent}", flush=True)
    return failures


def _stream_settings(loadgen_settings: dict) -> dict:
    """The streams and threads LoadGen's SUT ran with, as a result's settings record them."""
    ran = {"streams": loadgen_settings.get("streams", 1), "intra_op_threads": loadgen_settings.get("intra_op"),
           "inter_op_threads": loadgen_settings.get("inter_op"), "stream_cores": loadgen_settings.get("stream_cores")}
    return {key: value for key, value in ran.items() if value is not None}

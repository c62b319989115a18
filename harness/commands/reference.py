"""`harness reference`: the campaign that trains the frozen reference generator (`train`), and
where it stands (`status`). See benchmark/campaign.py for what a campaign keeps where."""
from __future__ import annotations

import argparse
import os
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmark.campaign import REFERENCE_SEED
from benchmark.recipe import ANGLE_BENCHMARK, CAMPAIGNS, STUDY
from benchmark.ship import GENERATORS, VALIDATION_DATA_SEEDS
from harness.arguments import add_background_options
from harness.commands import distortions, holdtest, queue, scale_study, study, target_v3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reference", help="train the frozen reference generator (a resumable campaign) or show it",
        description="The reference training campaign: one seed of the closed recipe, trained over "
                    "many sessions to a fixed sample budget. Its state, best generator and curve live "
                    "in benchmark/convergence/ and are committed; its data are regenerated from their "
                    "recorded seeds.")
    sub = parser.add_subparsers(dest="reference_command", metavar="SUBCOMMAND", required=True)

    train = _campaign_command(
        sub, "train", "resume the campaign and train for --hours at low priority",
        "Resume the campaign from its committed state (or start it), train the closed recipe for "
        "--hours at low priority, evaluate the quality gate every interval on a held-out set, "
        "append every evaluation to the curve, keep the best generator, and stop with a checkpoint "
        "when the time is up or on SIGTERM. Commit benchmark/convergence/ afterwards.",
        seed_help="the campaign's seed (one campaign per seed)")
    add_background_options(train)
    _arm_option(train)
    train.set_defaults(func=run_train)

    status = _campaign_command(sub, "status", "the campaign's samples, sessions and latest evaluations")
    status.add_argument("--last", type=int, default=10, help="sessions and evaluations to show")
    _arm_option(status)
    status.set_defaults(func=run_status)

    plot = _campaign_command(
        sub, "plot", "draw the campaign's curve (objective, physics gates, failing checks) to a PNG",
        "Draw the campaign's curve against training samples: the original objective and its terms, "
        "the physics metrics its target rule gates beside their noise-floor limits, and the checks failing; "
        "session starts are marked with their commit, the budget and the target rule's window drawn.")
    plot.add_argument("--out", metavar="FILE", default=None,
                      help="the PNG to write (default: beside the curve in benchmark/convergence/)")
    _arm_option(plot)
    plot.set_defaults(func=run_plot)

    target = _campaign_command(
        sub, "target", "the v2 limits the rule in CALIBRATION.md gives from the curve",
        "Apply the v2 rule (benchmark/thresholds/CALIBRATION.md) to the campaign's curve: each gated "
        "metric's limit is the larger of its noise-floor limit and 1.25 x its largest value over the "
        "last 6 evaluations. Before the budget is reached this is a preview, labelled so; metrics "
        "without a calibrated floor yet use 0 as the floor. With --write, at or past the budget: "
        "compute those floors by v1's procedure, write the limits as the release candidate "
        "<benchmark>-quality-v2-rc (not submittable) and register it.")
    target.add_argument("--write", action="store_true",
                        help="write and register the v2 release candidate (only at or past the budget)")
    target.add_argument("--out", metavar="FILE", default=None,
                        help="with --write: the file (default benchmark/thresholds/<benchmark>-v2-rc.json)")
    target.set_defaults(func=run_target)

    reproduce = _campaign_command(
        sub, "reproduce", "judge a second seed's campaign against the release candidate its recipe set",
        "Judge every recorded evaluation of a second seed (trained from scratch with the same recipe) "
        "against the release candidate that recipe's reference set (v2-rc; for a study arm, v3-rc), "
        "with the generator that set it (trained, or the moving average). Exit 0 when one evaluation "
        "within the allowance (1.5 x the reference's budget) passes every limit: the candidate is "
        "reproduced; 1 when none has yet (or, once the allowance is trained, none did); 2 on bad "
        "input. With --promote, a reproduced candidate becomes its version without -rc: the same "
        "limits, submittable, registered, and the benchmark's target.",
        seed_help="the second seed's campaign")
    reproduce.set_defaults(seed=2)
    _arm_option(reproduce)
    reproduce.add_argument("--candidate", metavar="FILE", default=None,
                           help="the release candidate (default: the one the curve's recipe set)")
    reproduce.add_argument("--promote", action="store_true",
                           help="when reproduced, write v2 and make it the benchmark's target")
    reproduce.set_defaults(func=run_reproduce)

    ship = _campaign_command(
        sub, "ship", "validate a campaign generator on unseen data; ship it if it passes",
        "Validate a campaign generator (--generator best: the best by the original objective; final: "
        "the generator at the latest evaluation, which at the budget is the one v2's limits were set "
        "on; v3: the recipe study's v3 reference, exported by `target-v3`; --seed is then its arm's) "
        "against a fresh stand-in set of a seed the campaign never saw, under the benchmark's "
        "target (or --target, another registered version). Only if every gated metric passes: write it to "
        "reference_model/checkpoints/ with its sidecar (SHA-256, provenance, every metric) and a "
        "model card. Exit 0 when shipped, 1 when it fails the target (nothing written), 2 on bad input.",
        seed_help="the campaign whose generator ships")
    ship.add_argument("--generator", choices=GENERATORS, default="best",
                      help="which of the campaign's generators")
    ship.add_argument("--validation-seed", type=int, default=None,
                      help="seed of the fresh validation set (not a campaign set's); default: the "
                           "benchmark's shipping seed ("
                           + ", ".join(f"{b} {s}" for b, s in VALIDATION_DATA_SEEDS.items()) + ")")
    ship.add_argument("--data-dir", default="runs/campaign-data", help="where the validation set is made")
    ship.add_argument("--target", metavar="VERSION", default=None,
                      help="a registered thresholds version to validate against, e.g. the release "
                           "candidate 3dgan-quality-v2-rc (default: the benchmark's target)")
    ship.add_argument("--dest", metavar="DIR", default=None,
                      help="write here instead of reference_model/checkpoints/ (a dry ship)")
    ship.set_defaults(func=run_ship)

    study.register(sub)
    scale_study.register(sub)
    queue.register(sub)
    holdtest.register(sub)
    distortions.register(sub)
    target_v3.register(sub)


def _campaign_command(sub, name: str, help: str, description: str | None = None,
                      seed_help: str = "the campaign's seed") -> argparse.ArgumentParser:
    """A subcommand about one campaign: --benchmark and --seed name it."""
    parser = sub.add_parser(name, help=help, description=description or help,
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--benchmark", choices=(*CAMPAIGNS, ANGLE_BENCHMARK), default="3dgan",
                        help=f"{ANGLE_BENCHMARK}'s campaign trains the recipe study's pick, once it has one")
    parser.add_argument("--seed", type=int, default=REFERENCE_SEED, help=seed_help)
    return parser


def _arm_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arm", choices=tuple(STUDY), default=None,
                        help="a recipe-study arm's campaign instead of the benchmark's (3dgan only; a "
                             "second seed of the study's winner reproduces v3)")


def _recipe(args: argparse.Namespace):
    """The campaign's recipe: the benchmark's (the angle one's from the recipe study's pick), or the
    recipe-study arm's named by --arm."""
    if getattr(args, "arm", None) is None:
        if args.benchmark == ANGLE_BENCHMARK:
            from benchmark.recipe_study import angle_recipe, gating_limits
            return angle_recipe(gating_limits())
        return CAMPAIGNS[args.benchmark]
    if args.benchmark != STUDY[args.arm].benchmark:
        from reference_model.errors import InputError
        raise InputError(f"--arm {args.arm}: the recipe study trains {STUDY[args.arm].benchmark}, not {args.benchmark}")
    return STUDY[args.arm]


def run_train(args: argparse.Namespace) -> int:
    if args.nice:
        os.nice(args.nice)
    session = train_session(_recipe(args), args.seed, args.hours, Path(args.data_dir), args.threads)
    print(f"[campaign] stopped at {session['samples_at_stop']:,} samples "
          f"({session['samples_at_stop'] - session['samples_at_start']:,} this session, "
          f"{session['samples_per_second'] or 0:.2f} samples/s with evaluations); commit "
          "benchmark/convergence/", flush=True)
    return 0


def train_session(recipe, seed: int, hours: float, data_dir: Path, threads: int,
                  until_samples: int | None = None) -> dict:
    """One session of a campaign (`recipe`, a benchmark.recipe.CampaignRecipe): hold its lock, make
    its data from their seeds unless present, open its MLPerf log and train for what is left of
    `hours` once the data are there (or to `until_samples`). Returns the session's entry of the
    curve."""
    from benchmark.campaign import ensure_campaign_data, run_campaign, session_lock
    from benchmark.vocabulary import TTA
    from harness.mlperf_log import MLPerfLogger
    from harness.results import system_name

    name = recipe.campaign_name
    started = time.monotonic()
    with session_lock(name, seed):
        train_data, heldout_data = ensure_campaign_data(recipe, data_dir)
        hours = max(0.0, hours - (time.monotonic() - started) / 3600.0)  # making data is part of them
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        log_dir = data_dir.parent / "campaign-logs"
        log_dir.mkdir(parents=True, exist_ok=True)
        log = log_dir / f"{name}-seed{seed}-{stamp}.log"
        logger = MLPerfLogger(log, rank=0, benchmark=recipe.benchmark, mode=TTA, smoke=False, nodes=1, ranks=1)
        until = f" to {until_samples:,} samples" if until_samples else ""
        print(f"[campaign] {name} seed {seed} (batch {recipe.per_rank_batch}): training{until} for at most "
              f"{hours:.2f} h; MLPerf log {log}", flush=True)
        return run_campaign(recipe, seed, hours, train_data, heldout_data, logger,
                            command=shlex.join(["harness", *sys.argv[1:]]), system=system_name(),
                            threads=threads, until_samples=until_samples)


def _read_curve(benchmark: str, seed: int) -> dict:
    from benchmark.campaign import read_curve
    from reference_model.errors import InputError

    document = read_curve(benchmark, seed)
    if document is None:
        raise InputError(f"no campaign for {benchmark} seed {seed} yet; start one with harness reference train")
    return document


def run_status(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark.campaign import reproduction_target
    from benchmark.recipe import reproduction_samples
    from benchmark.reference_target import failing_limits, judged_generator

    name = _recipe(args).campaign_name
    document = _read_curve(name, args.seed)
    points, sessions, best = document["points"], document["sessions"], document["best"]
    best_text = (f"best {best['metric']} {best['value']:.4g} at {best['samples']:,} samples"
                 if best else "no evaluation yet")
    budget = document["recipe"]["budget_samples"]
    trains_to = (f"budget {budget:,} samples" if args.seed == REFERENCE_SEED else
                 f"trains to {reproduction_samples(budget):,} samples to reproduce the reference's target")
    print(f"{name} seed {args.seed}: {len(points)} evaluations, {len(sessions)} sessions, "
          f"{trains_to}; {best_text}")
    session_rows = [(s["started"][:16].replace("T", " "), (s.get("suite_commit") or "?")[:12],
                     s.get("system", "not recorded"), f"{s['samples_at_start']:,}", f"{s['samples_at_stop']:,}",
                     "not stopped" if s["stopped"] is None else f"{s['samples_per_second'] or 0:.2f}")
                    for s in sessions[-args.last:]]
    print(tabulate(session_rows, headers=("session started (UTC)", "commit", "system", "from", "to", "samples/s")))
    shown = points[-args.last:]
    rows = [(p["samples"], f"{p['seconds'] / 3600:.2f}", f"{p['objective']:.4g}",
             f"{p['metrics'].get('profile_l1', float('nan')):.4f}",
             f"{p['metrics'].get('objective.sampling_fraction', float('nan')):.4f}", p["failed"])
            for p in shown]
    headers = ["samples", "hours", "objective", "profile L1", "SF error", "failing"]
    target = reproduction_target(args.benchmark, document["recipe"]) if args.seed != REFERENCE_SEED else None
    if target is not None:  # what the second seed has to reach, beside the gate it trains under
        judged = failing_limits(shown, target.limits, judged_generator(target))
        rows = [(*row, len(failing)) for row, (_, failing) in zip(rows, judged)]
        headers.append(f"failing {target.name}")
    print(tabulate(rows, headers=headers))
    return 0


def run_plot(args: argparse.Namespace) -> int:
    from benchmark import quality
    from benchmark.campaign import curve_path, reproduction_target
    from harness.campaign_plot import plot_campaign

    name = _recipe(args).campaign_name
    document = _read_curve(name, args.seed)
    out = Path(args.out) if args.out else curve_path(name, args.seed).with_suffix(".png")
    candidate = reproduction_target(args.benchmark, document["recipe"]) if args.seed != REFERENCE_SEED else None
    plot_campaign(document, quality.load_thresholds(args.benchmark), out, candidate)
    print(f"[campaign] curve of {len(document['points'])} evaluations written to {out}")
    return 0


def run_target(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark import quality
    from benchmark.reference_target import limits_from_reference, v2_gated_metrics, window_points

    if args.write:
        return _write_release_candidate(args)
    document = _read_curve(args.benchmark, args.seed)
    thresholds = quality.load_thresholds(args.benchmark)
    gated = v2_gated_metrics(thresholds)
    floors = {name: thresholds.limits.get(name, 0.0) for name in gated}
    samples, budget = document["points"][-1]["samples"], document["recipe"]["budget_samples"]
    at_budget = samples >= budget
    limits = limits_from_reference(window_points(document) if at_budget else document["points"], floors, gated)
    label = ("v2 limits, floors not yet computed for every metric (write them with --write)" if at_budget
             else f"PREVIEW at {samples:,} of {budget:,} samples (not v2)")
    print(f"{args.benchmark} seed {args.seed}: {label}; floors from {thresholds.version}")
    rows = [(name, entry["threshold"], entry["reference_max"],
             entry["floor_limit"] if name in thresholds.limits else "not calibrated", entry["set_by"])
            for name, entry in limits.items()]
    print(tabulate(rows, headers=("metric", "limit", "reference max", "floor limit", "set by")))
    print(_own_passes(document, {name: entry["threshold"] for name, entry in limits.items()}))
    return 0


def _own_passes(document: dict, limits: dict[str, float]) -> str:
    """Where the reference seed's own curve passes the limits it set: a hint of the second seed's
    odds, not evidence (the limits came from this curve's window)."""
    from benchmark.reference_target import failing_limits

    passing = [samples for samples, failing in failing_limits(document["points"], limits) if not failing]
    where = f"first at {passing[0]:,} samples" if passing else "never"
    return (f"seed {document['seed']}'s own evaluations passing every limit: {len(passing)} of "
            f"{len(document['points'])}, {where} (the limits came from its window: a hint for a second "
            "seed, not evidence)")


def _write_release_candidate(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from benchmark import quality
    from benchmark.calibration import write_thresholds
    from benchmark.campaign import curve_path
    from benchmark.reference_target import release_candidate, release_candidate_path
    from harness.thresholds_registry import file_sha256, register_version

    document = _read_curve(args.benchmark, args.seed)
    out = Path(args.out) if args.out else release_candidate_path(args.benchmark)
    if out.exists():
        from reference_model.errors import InputError
        raise InputError(f"{out}: the v2 release candidate is already written; a published candidate is "
                         "never replaced")
    v1 = quality.load_thresholds(args.benchmark)
    print(f"[target] v2 release candidate from {args.benchmark} seed {args.seed}; floors from {v1.version}",
          flush=True)
    candidate = release_candidate(document, file_sha256(curve_path(args.benchmark, args.seed)), v1,
                                  command=shlex.join(["harness", *sys.argv[1:]]))
    write_thresholds(candidate, out)
    pair = register_version(out)
    rows = [(name, entry["threshold"], entry["reference_max"], entry["floor_limit"],
             entry.get("note") or entry["set_by"]) for name, entry in candidate["metrics"].items()]
    print(tabulate(rows, headers=("metric", "limit", "reference max", "floor limit", "set by")))
    print(_own_passes(document, {name: entry["threshold"] for name, entry in candidate["metrics"].items()}))
    print(f"[target] wrote {out} and registered {pair}; not submittable until a second seed reaches it "
          f"within {candidate['reproduction']['within_samples']:,} samples (harness reference reproduce); "
          "commit benchmark/thresholds/", flush=True)
    return 0


def run_reproduce(args: argparse.Namespace) -> int:
    from benchmark import quality
    from benchmark.campaign import reproduction_target
    from benchmark.reference_target import judge_reproduction
    from reference_model.errors import InputError

    curve = _read_curve(_recipe(args).campaign_name, args.seed)
    if args.candidate:
        if not Path(args.candidate).is_file():
            raise InputError(f"--candidate {args.candidate}: no such file")
        candidate = quality.load_thresholds(args.benchmark, path=Path(args.candidate))
    elif (candidate := reproduction_target(args.benchmark, curve["recipe"])) is None:
        raise InputError("no release candidate set by this campaign's recipe; write it at the reference's "
                         "budget (`harness reference target --write`, or `target-v3` for the recipe study)")
    verdict = judge_reproduction(candidate, curve)
    print(f"{args.benchmark} seed {args.seed} against {candidate.version}: trained {verdict.trained:,} of "
          f"{verdict.within_samples:,} samples")
    for samples, failing in verdict.closest:
        shown = ", ".join(failing[:4]) + (f", +{len(failing) - 4} more" if len(failing) > 4 else "")
        print(f"  {samples:>9,} samples: {len(failing)} of {len(candidate.limits)} limits failing"
              + (f" ({shown})" if failing else ""))
    if verdict.reproduced:
        print(f"REPRODUCED: seed {args.seed} passes every limit at {verdict.first_pass:,} samples")
        if args.promote:
            _promote(args, candidate, verdict)
        return 0
    print("NOT REPRODUCED: no evaluation within the allowance passed every limit" if verdict.exhausted
          else "not yet: no evaluation passes every limit; keep training (harness reference train "
               f"--seed {args.seed})")
    if args.promote:
        print("[target] nothing promoted")
    return 1


def _promote(args: argparse.Namespace, candidate, verdict) -> None:
    from benchmark.calibration import write_thresholds
    from benchmark.campaign import curve_path
    from benchmark.quality import THRESHOLDS_DIR
    from benchmark.reference_target import promoted_target
    from harness.thresholds_registry import file_sha256, register_version, set_target
    from reference_model.errors import InputError

    out = THRESHOLDS_DIR / Path(candidate.path).name.replace("-rc.json", ".json")
    if out.exists() or out.name == Path(candidate.path).name:
        raise InputError(f"{out}: already written (a published target is never replaced), or "
                         f"{candidate.path} is not a release candidate's file (<benchmark>-vN-rc.json)")
    curve = curve_path(_recipe(args).campaign_name, args.seed)
    document = promoted_target(candidate, verdict, file_sha256(curve),
                               command=shlex.join(["harness", *sys.argv[1:]]))
    write_thresholds(document, out)
    pair = register_version(out)
    set_target(args.benchmark, document["version"])
    print(f"[target] promoted: wrote {out}, registered {pair}, and made it the {args.benchmark} target; "
          "commit benchmark/thresholds/", flush=True)


def run_ship(args: argparse.Namespace) -> int:
    from benchmark import quality
    from benchmark.ship import ship_reference
    from harness.commands.validate import format_table

    thresholds = quality.load_thresholds(args.benchmark, version=args.target)
    validation_seed = (args.validation_seed if args.validation_seed is not None
                       else VALIDATION_DATA_SEEDS[args.benchmark])
    print(f"[ship] validating the {args.benchmark} seed {args.seed} campaign's {args.generator} generator "
          f"on a fresh stand-in set (seed {validation_seed}) against {thresholds.version}", flush=True)
    outcome = ship_reference(args.benchmark, args.seed, thresholds, Path(args.data_dir), validation_seed, args.dest,
                             command=shlex.join(["harness", *sys.argv[1:]]), generator=args.generator)
    print(format_table(outcome.report))
    campaign = outcome.card["campaign"]
    if outcome.weights is None:
        print(f"[ship] NOT shipped: the {args.generator} generator ({campaign['samples']:,} samples) does not pass "
              f"{thresholds.name} on unseen data; keep training (`harness reference train`)", flush=True)
        return 1
    print(f"[ship] shipped {outcome.weights} (SHA-256 {outcome.card['sha256'][:12]}..., "
          f"{campaign['samples']:,} samples) with its model card {outcome.model_card}; commit "
          "reference_model/checkpoints/", flush=True)
    return 0

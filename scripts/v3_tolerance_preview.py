"""What a v3 with v1's tolerance margin and no cap would gate (issue 22, the decision's option (a)).

Evaluation only, from committed records: the release candidate `3dgan-quality-v3-rc` keeps, per
gated metric, the reference's window maximum and the noise-floor limit; its calibration record
holds the reference's value on each of the 20 calibration seeds. The preview's limit per metric
is the largest of MARGIN x the window maximum (as the candidate records it, to 4 significant
digits), v1's tolerance bound on the 20 seed values
(`calibration.threshold_from_floor`, K = the gated metrics) and the noise-floor limit, rounded up;
no cap at v2's limits. It prints those limits beside v2's and the candidate's, how many of the
20 validation seeds pass them (seen before, so a diagnosis, not a hold test), and what v2, the
candidate and the preview let through (`benchmark.distortions`). Nothing is registered or written.

    .venv/bin/python scripts/v3_tolerance_preview.py [--pairs 7:8,9:10] [--show separation.sampling_fraction]
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmark import quality  # noqa: E402
from benchmark.calibration import round_up, threshold_from_floor  # noqa: E402
from benchmark.hold_test import read_record  # noqa: E402
from benchmark.target_v3 import MARGIN  # noqa: E402
from benchmark.v3_candidate import calibration_record, hold_record, reference_path  # noqa: E402

PREVIEW = "3dgan-quality-v3-tolerance-preview"


def preview_limits(candidate: dict, calibration_seeds: dict) -> dict[str, dict]:
    """Per gated metric of the candidate: the preview's limit and which bound set it."""
    names = list(candidate["metrics"])
    limits = {}
    for name, entry in candidate["metrics"].items():
        seed_values = np.asarray([seed["metrics"][name] for seed in calibration_seeds.values()])
        bounds = {"window": MARGIN * entry["window_max"],
                  "calibration seeds (tolerance)": threshold_from_floor(seed_values, len(names))[0],
                  "noise floor": entry["floor_limit"]}
        set_by = max(bounds, key=bounds.get)
        limits[name] = {"threshold": round_up(bounds[set_by]), "set_by": set_by}
    return limits


def main() -> int:
    from tabulate import tabulate

    from harness.commands.distortions import print_lets_through

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", default="7:8,9:10")
    parser.add_argument("--show", default=None, help="metric name prefix to show values for, e.g. separation.moment_z1")
    args = parser.parse_args()

    v2 = quality.load_thresholds("3dgan", version="3dgan-quality-v2")
    rc = quality.load_thresholds("3dgan", version="3dgan-quality-v3-rc")
    reference = reference_path("3dgan")
    calibration = read_record(calibration_record(reference, "3dgan"))
    validation = read_record(hold_record(reference, "3dgan"))
    limits = preview_limits(rc.document, calibration.document["seeds"])

    rows = [(name, v2.limits.get(name, "-"), rc.limits[name], entry["threshold"], entry["set_by"])
            for name, entry in limits.items()]
    print(tabulate(rows, headers=("metric", "v2", "v3-rc (capped)", "preview (uncapped)", "preview set by")))
    passing = [seed for seed, verdict in validation.document["seeds"].items()
               if all(verdict["metrics"][name] <= entry["threshold"] for name, entry in limits.items())]
    print(f"\nvalidation seeds {validation.seeds[0]}-{validation.seeds[-1]} passing the preview: "
          f"{len(passing)} of {len(validation.seeds)} (seen before: a diagnosis, not a hold test)\n")

    document = copy.deepcopy(rc.document)
    document.update(version=PREVIEW, submittable=False)
    for name, entry in limits.items():
        document["metrics"][name] = {**document["metrics"][name], **entry}
    preview = quality.Thresholds.from_document(document, "preview-not-registered")
    return print_lets_through([v2, rc, preview], args.pairs, markdown=True, show=args.show)


if __name__ == "__main__":
    sys.exit(main())

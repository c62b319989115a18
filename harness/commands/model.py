"""`harness model info`: the frozen reference models' names, versions, fingerprints, sizes, FLOPs."""
from __future__ import annotations

import argparse
import json


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("model", help="describe the frozen reference models",
                                   description="Describe the frozen reference models.")
    sub = parser.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    info = sub.add_parser("info", help="names, versions, architecture fingerprints, parameters, FLOPs",
                          description="Print each reference model with its version, architecture "
                                      "fingerprint, parameter counts and forward FLOPs per shower, "
                                      "and whether the fingerprint matches the recorded one.")
    info.add_argument("--json", action="store_true", help="print JSON instead of a table")
    info.set_defaults(func=run_info)


def run_info(args: argparse.Namespace) -> int:
    from tabulate import tabulate

    from reference_model.fingerprint import all_cards, recorded_fingerprints

    recorded = recorded_fingerprints()
    cards = all_cards()
    for card in cards:
        card["frozen"] = recorded.get(card["name"]) == card["fingerprint"]
    if args.json:
        print(json.dumps(cards, indent=2))
    else:
        rows = [(c["benchmark"], c["name"], c["version"], f"{c['parameters']:,}",
                 f"{c['trainable_parameters']:,}", f"{c['flops_per_shower'] / 1e9:.3f}",
                 c["fingerprint"][:16], "yes" if c["frozen"] else "DRIFTED") for c in cards]
        print(tabulate(rows, headers=("benchmark", "model", "version", "parameters", "trainable",
                                      "GFLOP/shower", "fingerprint", "frozen"), disable_numparse=True))
    return 0 if all(c["frozen"] for c in cards) else 1

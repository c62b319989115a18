"""Argument types and option groups shared by the commands, so every flag rejects bad values the
same way and every background job takes the same options."""
from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def int_list(text: str) -> list[int]:
    """A comma-separated list of positive integers, duplicates dropped, order kept."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return list(dict.fromkeys(values))


def learning_rate_decay(text: str) -> list:
    """START,END,FACTOR: a cosine from the peak rate at START samples down to FACTOR x the peak at
    END samples (`benchmark.recipe.LearningRateDecay`)."""
    parts = text.split(",")
    try:
        start, end, factor = int(parts[0]), int(parts[1]), float(parts[2])
        if len(parts) != 3:
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"expected START,END,FACTOR (samples, samples, a fraction of the peak "
                                         f"rate), e.g. 100000,200000,0.1; got {text!r}") from None
    if not 0 <= start < end:
        raise argparse.ArgumentTypeError(f"the decay must start before it ends, at 0 or more samples; got {text!r}")
    if not 0 < factor <= 1:
        raise argparse.ArgumentTypeError(f"the final factor is a fraction of the peak rate in (0, 1]; got {text!r}")
    return [start, end, factor]


def add_background_options(parser: argparse.ArgumentParser) -> None:
    """The options of a long job in the background slot (a campaign, a study, the queue): its
    hours, where its stand-in data are made, its threads and its niceness."""
    parser.add_argument("--hours", type=positive_float, default=1.0, help="training time of this session")
    parser.add_argument("--data-dir", default="runs/campaign-data",
                        help="where the stand-in training and held-out sets are made (never committed)")
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads (0: all cores)")
    parser.add_argument("--nice", type=int, default=10, help="scheduling niceness added to this process")

"""The keys of our MLPerf logs: MLPerf's own from `mlperf_logging.mllog.constants`, and the ones
this suite adds, spelled once here so the trainer that writes them and the harness that reads
them cannot drift apart."""
from __future__ import annotations

from mlperf_logging.mllog import constants as mlperf

# Events this suite adds to MLPerf's.
BENCHMARK_MODE = "benchmark_mode"
SUBMITTABLE = "submittable"
MODEL_FINGERPRINT = "model_fingerprint"
QUALITY_THRESHOLDS = "quality_thresholds"
LOCAL_BATCH_SIZE = "local_batch_size"
NUMBER_OF_RANKS = "number_of_ranks"
PRECISION = "precision"
RESUMED = "resumed"
EMULATED_RANKS = "emulated_ranks"  # ranks emulated in one process: convergence evidence, not a timing
LR_SCALING = "opt_learning_rate_scaling"  # a candidate rule of the closed-rule study, when not linear
EVAL_INTERVAL = "eval_interval_samples"  # tta in evaluation intervals: each logged epoch is one of them
MOVING_AVERAGE = "generator_moving_average_samples"  # the gate judges this moving average of the generator
TRAIN_DATA = "train_data"  # the recipe of the stand-in set trained on, or what else it was
EVAL_DATA = "eval_data"  # the same for the held-out showers the gate compares (tta)

__all__ = ["mlperf", "BENCHMARK_MODE", "SUBMITTABLE", "MODEL_FINGERPRINT", "QUALITY_THRESHOLDS",
           "LOCAL_BATCH_SIZE", "NUMBER_OF_RANKS", "PRECISION", "RESUMED", "EMULATED_RANKS",
           "LR_SCALING", "EVAL_INTERVAL", "MOVING_AVERAGE", "TRAIN_DATA", "EVAL_DATA"]

"""The benchmark's vocabulary: the names of its modes, precisions, LoadGen scenarios and scaling
series, each spelled once.

These strings are an interface: they are CLI choices, fields of every result summary, values in
the MLPerf logs that `benchmark/compliance/*.yaml` checks, and folder names of the results tree.
A copy that drifts silently splits one idea in two, so every module names them from here.
"""
from __future__ import annotations

# -- benchmark modes (`harness run --mode`) ---------------------------------------------------------
TTA = "tta"  # time to accuracy (MLPerf HPC time to solution)
THROUGHPUT = "throughput"  # M instances trained to the target at once (MLPerf HPC throughput)
EPOCH_TIME = "epoch-time"  # training speed
SCALING = "scaling"  # epoch time against rank count
INFERENCE = "inference"  # LoadGen runs of the frozen generator
MODES = (TTA, THROUGHPUT, EPOCH_TIME, SCALING, INFERENCE)
# what an MLPerf training log's benchmark_mode says (an instance of a throughput set logs tta)
LOGGED_MODES = (TTA, EPOCH_TIME)

# -- precisions -------------------------------------------------------------------------------------
FLOAT32 = "float32"
MIXED_BFLOAT16 = "mixed_bfloat16"  # the Keras policy: bfloat16 compute, float32 variables
TRAINING_PRECISIONS = (FLOAT32, MIXED_BFLOAT16)
BFLOAT16 = "bfloat16"
INT8 = "int8"
INFERENCE_PRECISIONS = (FLOAT32, BFLOAT16, INT8)

# -- LoadGen scenarios (MLPerf Inference), in the order a run without --scenarios runs them ----------
OFFLINE = "Offline"
SINGLE_STREAM = "SingleStream"
MULTI_STREAM = "MultiStream"
SERVER = "Server"
SCENARIOS = (OFFLINE, SINGLE_STREAM, MULTI_STREAM, SERVER)

# -- scaling series (classic HPC sense, not MLPerf's weak/ folder) -----------------------------------
STRONG = "strong"  # fixed global batch
WEAK = "weak"  # fixed per-rank batch
SCALING_TYPES = (STRONG, WEAK)

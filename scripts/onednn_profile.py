"""Where the inference generator's time goes on this CPU, per oneDNN primitive: which kernel
(implementation and ISA) runs each convolution, its time per batch and its GFLOP/s against the
matmul roofline measured in the same process with the same threads (the sweep's protocol,
`benchmark.roofline.measure_matmul`). Answers "why does this CPU reach a smaller share of its
roofline than another" (docs/inference-performance.md).

It runs the generator as the sweep's streams run it (the frozen graph of
`benchmark.precision.TensorFlowRunner`, polyphase rewrite, the shipped checkpoint) in a child
process with ONEDNN_VERBOSE=1, and sums the child's `primitive,exec` lines over the timed
batches. Printing the lines costs a little, so the wall time is an upper bound; the primitive
times are oneDNN's own.

Usage: .venv/bin/python scripts/onednn_profile.py [--benchmark 3dgan] [--precision float32]
       [--batch 256] [--threads 1] [--batches 6]   (pause the campaign first: SIGSTOP its pid)
"""
from __future__ import annotations

import argparse
import collections
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
TIMED, DONE = "=== timed batches ===", "=== done"
CONV_SIZES = re.compile(r"(?:g(\d+))?mb(\d+)_ic(\d+)oc(\d+)")


def _valid_taps(problem: str, axis: str) -> tuple[int, int]:
    """(output positions x taps, of which inside the input) along one axis: a tap on the zero
    padding multiplies nothing, and oneDNN's brgemm convolutions skip it."""
    match = re.search(rf"i{axis}(\d+)o{axis}(\d+)k{axis}(\d+)s{axis}(\d+)d{axis}(\d+)p{axis}(\d+)", problem)
    if not match:
        return 1, 1
    size, out, kernel, stride, dilation, front = map(int, match.groups())
    valid = sum(1 for o in range(out) for k in range(kernel) if 0 <= o * stride - front + k * (dilation + 1) < size)
    return out * kernel, valid


def conv_flops(problem: str) -> tuple[float, float]:
    """FLOPs (2 x multiply-adds) of a oneDNN convolution problem descriptor: over every tap, and
    over the taps inside the input only; (0, 0) when it is not one."""
    match = CONV_SIZES.search(problem)
    if not match:
        return 0.0, 0.0
    groups, batch, ic, oc = (int(v) if v else 1 for v in match.groups())
    every = inside = 2.0 * batch * oc * ic / groups
    for axis in "dhw":
        taps, valid = _valid_taps(problem, axis)
        every, inside = every * taps, inside * valid
    return every, inside


def child(args: argparse.Namespace) -> None:
    """Run the generator; print the markers the parent cuts the verbose log at, and the roofline."""
    from benchmark import precision as prec
    from benchmark.roofline import measure_matmul
    from reference_model.specs import get_spec

    os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:args.threads])  # pinned, as a sweep stream is
    prec.configure_threads(args.threads, 1)
    from reference_model.checkpoint import frozen_checkpoint

    spec = get_spec(args.benchmark)
    checkpoint = Path(args.checkpoint) if args.checkpoint else frozen_checkpoint(args.benchmark)
    runner = prec.load_runner(args.precision, checkpoint, spec, args.threads, check_kernels=True)
    latent = prec.calibration_latents(spec, args.batch, seed=0)
    for _ in range(2):
        runner(latent)
    print(TIMED, flush=True)
    start = time.perf_counter()
    for _ in range(args.batches):
        runner(latent)
    wall = (time.perf_counter() - start) / args.batches
    print(f"{DONE} wall_ms_per_batch={wall * 1e3:.3f}", flush=True)
    roof = measure_matmul("bfloat16" if args.precision == "bfloat16" else "float32")  # the sweep's protocol
    print(f"roofline_gflops={roof.gflops:.1f}", flush=True)


def parse(lines: list[str], batches: int) -> tuple[list[dict], float, float, str]:
    """Per-primitive rows (ms per batch, GFLOP/s), the wall ms per batch, the roofline, the ISA."""
    isa = next((line.split("isa:", 1)[1] for line in lines if ",isa:" in line), "?")
    isa += ", " + next((line.split(",cpu,", 1)[1] for line in lines if ",runtime:" in line), "?")
    start = lines.index(TIMED)
    done = next(i for i, line in enumerate(lines) if line.startswith(DONE))
    wall = float(lines[done].rsplit("=", 1)[1])
    roof = float(next(line for line in lines if line.startswith("roofline_gflops=")).split("=", 1)[1])
    totals: dict[tuple, list[float]] = collections.defaultdict(lambda: [0.0, 0])
    for line in lines[start + 1:done]:
        fields = line.split(",")
        if "exec" not in fields or "primitive" not in fields:
            continue
        at = fields.index("exec")
        key = (fields[at + 2], fields[at + 3], fields[-2])  # kind, implementation, problem
        totals[key][0] += float(fields[-1])
        totals[key][1] += 1
    rows = []
    for (kind, impl, problem), (ms, calls) in totals.items():
        per_batch = ms / batches
        every, inside = (f * calls / batches for f in conv_flops(problem)) if kind == "convolution" else (0, 0)
        rows.append({"kind": kind, "implementation": impl, "problem": problem, "calls": calls // batches,
                     "ms_per_batch": per_batch, "gflops": every / per_batch / 1e6 if every else None,
                     "valid_gflops": inside / per_batch / 1e6 if inside else None,
                     "of_roofline": inside / per_batch / 1e6 / roof if inside else None})
    return sorted(rows, key=lambda r: -r["ms_per_batch"]), wall, roof, isa


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--benchmark", default="3dgan", choices=("3dgan", "3dgan-angle"))
    parser.add_argument("--precision", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--checkpoint", default=None, help="default: the benchmark's shipped generator")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1, help="intra-op threads (a sweep stream's)")
    parser.add_argument("--batches", type=int, default=6, help="timed batches after two untimed")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    command = [sys.executable, __file__, "--child", *sys.argv[1:]]
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        return done.returncode
    from tabulate import tabulate

    rows, wall, roof, isa = parse(done.stdout.splitlines(), args.batches)
    in_onednn = sum(r["ms_per_batch"] for r in rows)
    conv = [r for r in rows if r["kind"] == "convolution"]
    conv_ms = sum(r["ms_per_batch"] for r in conv)
    print(f"{args.benchmark} {args.precision}, batch {args.batch}, {args.threads} intra-op thread(s); "
          f"oneDNN isa: {isa}")
    print(f"wall {wall:.2f} ms/batch (verbose on); in oneDNN primitives {in_onednn:.2f} ms "
          f"({in_onednn / wall:.0%}), convolutions {conv_ms:.2f} ms; matmul roofline {roof:.1f} GFLOP/s")
    table = [[r["kind"], r["implementation"], r["problem"][:70], r["calls"], f"{r['ms_per_batch']:.3f}",
              f"{r['ms_per_batch'] / wall:.1%}", f"{r['gflops']:.1f}" if r["gflops"] else "",
              f"{r['valid_gflops']:.1f}" if r["valid_gflops"] else "",
              f"{r['of_roofline']:.0%}" if r["of_roofline"] else ""] for r in rows]
    print(tabulate(table, headers=["kind", "implementation", "problem", "calls", "ms/batch", "of wall",
                                   "GFLOP/s, every tap", "GFLOP/s, taps in the input", "of roofline"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

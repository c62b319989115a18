"""An experiment behind the angle inference rewrite (docs/inference-performance.md): does packing
output positions (and input positions) into channels speed up the angle generator's 6-channel
conv2 on this CPU? Ratios in one run."""
import sys
import time

import numpy as np
import tensorflow as tf

B = int(sys.argv[1]) if len(sys.argv) > 1 else 16
rng = np.random.default_rng(0)
x = rng.standard_normal((B, 53, 53, 43, 8)).astype(np.float32)  # conv2's padded input
w = rng.standard_normal((4, 4, 6, 8, 6)).astype(np.float32) * 0.1


def out_packed(w, axis, f):
    """Kernel computing f consecutive outputs along `axis` per strided position."""
    k = list(w.shape)
    k[axis] += f - 1
    k[4] *= f
    out = np.zeros(k, np.float32)
    co = w.shape[4]
    for p in range(f):
        idx = [slice(None)] * 5
        idx[axis] = slice(p, p + w.shape[axis])
        idx[4] = slice(p * co, (p + 1) * co)
        out[tuple(idx)] = w
    return out


def d2s(y, axis, f, co, n):
    """(B, ..., m, ..., f*co) -> (B, ..., m*f, ...) cropped to n along spatial `axis` (0..2)."""
    shape = tf.shape(y)
    s = [shape[1], shape[2], shape[3]]
    y = tf.reshape(y, [shape[0], s[0], s[1], s[2], f, co])
    perm = {0: [0, 1, 4, 2, 3, 5], 1: [0, 1, 2, 4, 3, 5], 2: [0, 1, 2, 3, 4, 5]}[axis]
    y = tf.transpose(y, perm)
    s[axis] = s[axis] * f
    y = tf.reshape(y, [shape[0], s[0], s[1], s[2], co])
    begin = [0, 0, 0, 0, 0]
    size = [-1, -1, -1, -1, -1]
    size[axis + 1] = n
    return tf.slice(y, begin, size)


def reference(x, dtype):
    return tf.nn.conv3d(x, tf.cast(w, dtype), [1, 1, 1, 1, 1], "VALID")


def variant_out(axis, f):
    wp = out_packed(w, axis, f)
    strides = [1, 1, 1, 1, 1]
    strides[axis + 1] = f
    n = x.shape[axis + 1] - w.shape[axis] + 1

    def run(x, dtype):
        need = -n % f  # extra outputs so the strided conv covers n
        pad = [[0, 0], [0, 0], [0, 0], [0, 0], [0, 0]]
        pad[axis + 1] = [0, need]
        xx = tf.pad(x, pad)
        y = tf.nn.conv3d(xx, tf.cast(wp, dtype), strides, "VALID")
        return d2s(y, axis, f, 6, n)
    return run


def variant_xy(f):
    # channels (px, py, co)
    k = (4 + f - 1, 4 + f - 1, 6, 8, f * f * 6)
    wp = np.zeros(k, np.float32)
    for px in range(f):
        for py in range(f):
            c = (px * f + py) * 6
            wp[px:px + 4, py:py + 4, :, :, c:c + 6] = w
    n = 50

    def run(x, dtype):
        need = -n % f
        xx = tf.pad(x, [[0, 0], [0, need], [0, need], [0, 0], [0, 0]])
        y = tf.nn.conv3d(xx, tf.cast(wp, dtype), [1, f, f, 1, 1], "VALID")
        shape = tf.shape(y)
        y = tf.reshape(y, [shape[0], shape[1], shape[2], shape[3], f, f, 6])
        y = tf.transpose(y, [0, 1, 4, 2, 5, 3, 6])
        y = tf.reshape(y, [shape[0], shape[1] * f, shape[2] * f, shape[3], 6])
        return y[:, :n, :n]
    return run


def time_it(fn, dtype, reps=5):
    xd = tf.constant(x, dtype)
    f = tf.function(lambda a: fn(a, dtype))
    f(xd)
    best = 1e9
    for _ in range(reps):
        t = time.perf_counter()
        f(xd).numpy()
        best = min(best, time.perf_counter() - t)
    return best, f(xd).numpy().astype(np.float32)


variants = {"reference": reference, "z x2": variant_out(2, 2), "x x2": variant_out(0, 2),
            "xy x2": variant_xy(2), "z x3": variant_out(2, 3)}
macs = 50 * 50 * 38 * 6 * 96 * 8 * B
for dtype in (tf.float32, tf.bfloat16):
    base_t, base_y = time_it(reference, dtype)
    for name, fn in variants.items():
        t, y = time_it(fn, dtype)
        err = float(np.max(np.abs(y - base_y)) / np.max(np.abs(base_y)))
        print(f"{dtype.name:9s} {name:10s} {t * 1e3:8.1f} ms  x{base_t / t:5.2f}  "
              f"{2 * macs / t / 1e9:6.1f} useful GFLOP/s  rel.err {err:.1e}", flush=True)

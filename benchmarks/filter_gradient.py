"""The filter gradient of the encoder's heaviest convolution, written three ways, timed alone.

The layer: the second convolution at 32x32 input (1,050 views, 15x15x128 -> 7x7x128, 3x3,
stride 2, no padding), which holds three quarters of the step's arithmetic. Its filter
gradient dW[i, j, c, k] = sum over views n and outputs (y, x) of
input[n, 2y + i, 2x + j, c] * out_grad[n, y, x, k] is timed as:

- `backprop`: TensorFlow's own (`Conv2DBackpropFilter`, oneDNN's filter-gradient kernel);
- `swapped, dilated`: one forward convolution with the batch and channel axes swapped: the
  input as 128 "images" of 15x15 with 1,050 channels, the output gradient as a 7x7 filter
  dilated by the stride, giving a 3x3 "image" per input channel;
- `swapped, 4 phases`: the same without dilation: the input split by the parity of its rows
  and columns into four stride-1 problems (16 taps computed for the 9 needed);

and, for scale, the input gradient and the forward pass of the same layer, and a bfloat16
and a float32 matrix product of 4096 x 4096. Each in float32 and bfloat16 on TensorFlow
(oneDNN), median of REPEATS after warm-up, checked against `backprop` (1e-5 relative in
float32, 1e-2 in bfloat16). Prints one JSON line per measurement; run it alone on a quiet
machine:

    python3 benchmarks/filter_gradient.py
"""

import json
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

VIEWS, SIZE, CHANNELS, KERNEL, STRIDE = 1050, 15, 128, 3, 2
OUT = (SIZE - KERNEL) // STRIDE + 1  # 7
REPEATS = 15
FLOP = 2 * VIEWS * OUT * OUT * KERNEL * KERNEL * CHANNELS * CHANNELS  # one pass of the layer


def backprop(x, dy):
    return tf.raw_ops.Conv2DBackpropFilter(
        input=x,
        filter_sizes=[KERNEL, KERNEL, CHANNELS, CHANNELS],
        out_backprop=dy,
        strides=[1, STRIDE, STRIDE, 1],
        padding="VALID",
    )


def swapped_dilated(x, dy):
    images = tf.transpose(x, [3, 1, 2, 0])  # (C, 15, 15, N)
    kernel = tf.transpose(dy, [1, 2, 0, 3])  # (7, 7, N, K)
    grad = tf.nn.conv2d(images, kernel, strides=1, padding="VALID", dilations=STRIDE)
    return tf.transpose(grad, [1, 2, 0, 3])  # (3, 3, C, K)


def swapped_phases(x, dy):
    kernel = tf.transpose(dy, [1, 2, 0, 3])  # (7, 7, N, K)
    rows = []
    for p in range(STRIDE):
        row = []
        for q in range(STRIDE):
            phase = tf.transpose(x[:, p::STRIDE, q::STRIDE, :], [3, 1, 2, 0])  # (C, 8|7, ., N)
            taps = tf.nn.conv2d(phase, kernel, strides=1, padding="VALID")  # (C, 2|1, ., K)
            row.append(tf.transpose(taps, [1, 2, 0, 3]))
        rows.append(row)
    # Tap (i, j) is phase (i % 2, j % 2) at offset (i // 2, j // 2).
    return tf.stack(
        [
            tf.stack([rows[i % 2][j % 2][i // 2, j // 2] for j in range(KERNEL)])
            for i in range(KERNEL)
        ]
    )


def input_gradient(x, dy, w):
    return tf.raw_ops.Conv2DBackpropInput(
        input_sizes=tf.shape(x), filter=w, out_backprop=dy, strides=[1, 2, 2, 1], padding="VALID"
    )


def forward(x, dy, w):
    return tf.nn.conv2d(x, w, strides=STRIDE, padding="VALID")


def median_ms(fn, *args) -> float:
    compiled = tf.function(fn)
    for _ in range(3):
        compiled(*args).numpy()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        compiled(*args).numpy()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def main():
    rng = np.random.default_rng(0)
    x32 = rng.standard_normal((VIEWS, SIZE, SIZE, CHANNELS)).astype("float32")
    dy32 = rng.standard_normal((VIEWS, OUT, OUT, CHANNELS)).astype("float32")
    w32 = rng.standard_normal((KERNEL, KERNEL, CHANNELS, CHANNELS)).astype("float32")
    for dtype, tolerance in (("float32", 1e-5), ("bfloat16", 1e-2)):
        x, dy, w = (tf.constant(a, dtype=dtype) for a in (x32, dy32, w32))
        reference = tf.cast(backprop(x, dy), "float32").numpy()
        scale = np.abs(reference).max()
        for name, fn in (
            ("filter gradient: backprop", backprop),
            ("filter gradient: swapped, dilated", swapped_dilated),
            ("filter gradient: swapped, 4 phases", swapped_phases),
        ):
            got = tf.cast(fn(x, dy), "float32").numpy()
            error = float(np.abs(got - reference).max() / scale)
            ms = median_ms(fn, x, dy)
            row = {
                "dtype": dtype,
                "op": name,
                "ms": round(ms, 1),
                "gflops": round(FLOP / ms / 1e6),
            }
            print(json.dumps({**row, "max_error": error, "within": error <= tolerance}))
        for name, fn in (("input gradient", input_gradient), ("forward", forward)):
            ms = median_ms(fn, x, dy, w)
            print(
                json.dumps(
                    {
                        "dtype": dtype,
                        "op": name,
                        "ms": round(ms, 1),
                        "gflops": round(FLOP / ms / 1e6),
                    }
                )
            )
        a = tf.constant(rng.standard_normal((4096, 4096)), dtype=dtype)
        ms = median_ms(tf.linalg.matmul, a, a)
        print(
            json.dumps(
                {
                    "dtype": dtype,
                    "op": "matmul 4096",
                    "ms": round(ms, 1),
                    "gflops": round(2 * 4096**3 / ms / 1e6),
                }
            )
        )


if __name__ == "__main__":
    main()

"""Training and inference speed of tfganomaly on this machine; prints a table and writes JSON.

    python benchmarks/speed.py [--steps 30] [--out benchmarks/results/speed.json]

Training: images/s of the real train_step (float32, XLA, mixed bfloat16) on real MNIST batches,
then at 32x32x1 with the levers of tfganomaly/fast_layers.py added one at a time from the stock ops.
Inference: images/s of Keras (batched, batch 1) and of each TFLite mode (batch 1, 1 thread).
With torch installed, the reference step (benchmarks/reference_torch.py) is measured in the same
run, before and after ours, on the same MNIST batches.
FLOPs per training image are counted from the model's conv layers; the machine's float32 and
bfloat16 peaks are measured in the same run with a large matrix product. Peak memory is that of a
default `tfgan fit` in its own process.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from tfganomaly.config import GANomalyConfig  # noqa: E402
from tfganomaly.fast_layers import LEVERS, stock_kernels  # noqa: E402
from tfganomaly.model import GANomaly  # noqa: E402

SETTINGS = {"float32": {}, "float32+xla": {"jit_compile": True},
            "mixed_bfloat16": {"precision": "mixed_bfloat16"},
            "mixed_bfloat16+xla": {"precision": "mixed_bfloat16", "jit_compile": True}}
SHAPES = [(32, 1), (32, 3), (64, 3)]


def conv_flops(network: keras.Model) -> dict:
    """Forward multiply-adds x 2 of every Conv2D / Conv2DTranspose in a functional model, by layer."""
    flops = {}
    for layer in network.layers:
        if isinstance(layer, (keras.layers.Conv2D, keras.layers.Conv2DTranspose)):
            k = int(np.prod(layer.kernel.shape))  # kh * kw * cin * cout
            if isinstance(layer, keras.layers.Conv2DTranspose):
                _, h, w, _ = layer.input.shape  # each input pixel is scattered through the kernel
            else:
                _, h, w, _ = layer.output.shape
            flops[layer.name] = 2 * k * h * w
    return flops


def train_flops_per_image(model: GANomaly) -> int:
    """The convolution FLOPs one training step executes per image (each backward product costs
    what its forward does):
    - forward: GE, GD, E, and D on x and on G(x);
    - G's loss: input and weight gradients through E, GD and GE (no input gradient for x), and
      input gradients through D's feature trunk on G(x) (feature matching);
    - D's loss: weight gradients of D on x and on G(x), with the input gradients above D's first layer.
    """
    encoder, d_layers = conv_flops(model.encoder), conv_flops(model.discriminator)
    g = sum(encoder.values()) + sum(conv_flops(model.decoder).values()) + sum(conv_flops(model.reencoder).values())
    d = sum(d_layers.values())
    forward = g + 2 * d
    generator_backward = 2 * g - encoder["initial_conv"] + (d - d_layers["classifier_conv"])
    discriminator_backward = 2 * (2 * d - d_layers["initial_conv"])
    return forward + generator_backward + discriminator_backward


def peak_gflops(dtype=tf.float32, n: int = 2048, repeats: int = 10) -> float:
    """Large matrix product throughput: what this machine's cores can do in that dtype."""
    a = tf.cast(tf.random.normal((n, n)), dtype)
    b = tf.cast(tf.random.normal((n, n)), dtype)
    matmul = tf.function(lambda x, y: tf.matmul(x, y))
    matmul(a, b).numpy()
    start = time.perf_counter()
    for _ in range(repeats):
        c = matmul(a, b)
    c.numpy()
    return 2 * n ** 3 * repeats / (time.perf_counter() - start) / 1e9


FIT_AND_REPORT_PEAK = """
import sys
from tfganomaly.cli.main import cli
cli(["fit", "--epochs", "2", "--out", sys.argv[1]], standalone_mode=False)
print(next(line for line in open("/proc/self/status") if line.startswith("VmHWM")))
"""


def training_peak_rss_mib() -> float:
    """Peak resident memory (VmHWM, Linux) of a real `tfgan fit` (default settings, 2 epochs) in a
    fresh process. getrusage(RUSAGE_CHILDREN) would report this process's own size at the fork."""
    import subprocess
    import tempfile
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run([sys.executable, "-c", FIT_AND_REPORT_PEAK, out], check=True,
                                capture_output=True, text=True)
    return int(result.stdout.split("VmHWM:")[1].split()[0]) / 1024


def mnist_batches(isize: int, nc: int, batch: int, count: int) -> list:
    from tfganomaly.data import ImageSpec, resize_images
    from tfganomaly.data.idx import read_idx
    root = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "mnist")
    images = read_idx(os.path.join(root, "train-images-idx3-ubyte.gz"))[: batch * count]
    images = resize_images(images, ImageSpec(isize, nc))
    return [tf.constant(images[i * batch:(i + 1) * batch]) for i in range(count)]


def train_speed(isize: int, nc: int, setting: dict, steps: int, batch: int = 64, stock: tuple = ()) -> dict:
    """stock: levers of tfganomaly/fast_layers.py to leave off (the stock Keras ops instead)."""
    keras.mixed_precision.set_global_policy(setting.get("precision", "float32"))
    try:
        with stock_kernels(stock):
            model = GANomaly(GANomalyConfig(isize=isize, nc=nc, batch_size=batch, **setting))
            model.compile()
            batches = mnist_batches(isize, nc, batch, 8)
            for b in batches[:3]:  # trace, compile, warm up
                model.train_on_batch(b)
            start = time.perf_counter()
            for i in range(steps):
                model.train_on_batch(batches[i % len(batches)])
            seconds = time.perf_counter() - start
        return {"images_per_s": steps * batch / seconds, "flops_per_image": train_flops_per_image(model)}
    finally:
        keras.mixed_precision.set_global_policy("float32")


def lever_speeds(steps: int) -> list:
    """32x32x1 training with the levers of fast_layers added one at a time, float32 and bfloat16."""
    rows = []
    for precision in ("float32", "mixed_bfloat16"):
        for i in range(len(LEVERS) + 1):
            name = f"{precision} stock" if i == 0 else f"{precision} + {LEVERS[i - 1]}"
            r = train_speed(32, 1, {"precision": precision}, steps, stock=LEVERS[i:])
            rows.append({"shape": "32x32x1", "setting": name, **r})
            print(f"levers 32x32x1 {name:40s} {r['images_per_s']:8.1f} img/s", flush=True)
    return rows


def inference_speed(isize: int, steps: int) -> dict:
    """Keras batched and batch-1 throughput, then each TFLite mode at batch 1 on 1 thread."""
    from tfganomaly.export.tflite import TFLiteScorer, build_scoring_model, convert, representative_images
    from tfganomaly.scoring import calibrate
    model = GANomaly(GANomalyConfig(isize=isize))
    flat = tf.concat(mnist_batches(isize, 1, 64, 4), 0).numpy()
    model.compile()
    model.fit(flat, batch_size=64, epochs=1, verbose=0)
    parts = model.score_components(flat)
    model.calibration = calibrate(parts["latent"], parts["reconstruction"])
    out = {}
    model.score(flat[:64])
    start = time.perf_counter()
    for _ in range(steps):
        model.score(flat[:64])
    out["keras batch 64"] = {"images_per_s": 64 * steps / (time.perf_counter() - start)}
    model.score(flat[:1])
    start = time.perf_counter()
    for i in range(steps):
        model.score(flat[i:i + 1])
    out["keras batch 1"] = {"images_per_s": steps / (time.perf_counter() - start)}
    rep = representative_images(flat[:200])
    for mode in ("float32", "float16", "dynamic", "int8"):
        content = convert(build_scoring_model(model), mode, rep)
        _, ms = TFLiteScorer(content).score_all(flat[: max(steps, 100)])
        out[f"tflite {mode} batch 1"] = {"images_per_s": 1000.0 / ms, "latency_ms": ms, "bytes": len(content)}
    return out


def reference_speed(steps: int) -> list:
    """The PyTorch reference step on the same MNIST batches, if torch is installed."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("torch not installed: no reference figure (pip install torch==2.13.0)")
        return []
    from reference_torch import reference_images_per_s
    return [reference_images_per_s([b.numpy() for b in mnist_batches(32, 1, 64, 8)], steps)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results", "speed.json"))
    args = parser.parse_args()
    peaks = {"float32": peak_gflops(tf.float32), "mixed_bfloat16": peak_gflops(tf.bfloat16)}
    print(f"matmul peak: float32 {peaks['float32']:.0f}, bfloat16 {peaks['mixed_bfloat16']:.0f} GFLOP/s "
          f"({os.cpu_count()} CPUs, TF {tf.__version__})")
    reference = reference_speed(args.steps)
    rows = []
    for isize, nc in SHAPES:
        for name, setting in SETTINGS.items():
            r = train_speed(isize, nc, setting, args.steps)
            gflops = r["images_per_s"] * r["flops_per_image"] / 1e9
            peak = peaks[setting.get("precision", "float32")]
            rows.append({"shape": f"{isize}x{isize}x{nc}", "setting": name, **r, "gflops": gflops,
                         "fraction_of_peak": gflops / peak})
            print(f"train {isize}x{isize}x{nc} {name:20s} {r['images_per_s']:8.1f} img/s  "
                  f"{r['flops_per_image'] / 1e6:7.1f} MFLOP/img  {gflops:6.1f} GFLOP/s "
                  f"({gflops / peak:.0%} of its dtype's peak)", flush=True)
    levers = lever_speeds(args.steps)
    if reference:
        reference.append(reference_speed(args.steps)[0])  # again after ours: the machine drifts
        ref = float(np.mean(reference))
        print(f"reference (PyTorch re-implementation, 4 D passes) 32x32x1: {', '.join(f'{r:.1f}' for r in reference)}"
              f" img/s, mean {ref:.1f}")
        for row in rows + levers:
            if row["shape"] == "32x32x1":
                row["vs_reference"] = row["images_per_s"] / ref
                print(f"  {row['setting']:20s} {row['vs_reference']:.2f}x the reference")
    inference = {}
    for isize in (32, 64, 128):
        inference[isize] = inference_speed(isize, args.steps)
        for name, r in inference[isize].items():
            extra = f"  {r['latency_ms']:.3f} ms  {r['bytes'] / 1024:.0f} KiB" if "bytes" in r else ""
            print(f"inference {isize}x{isize}x1 {name:24s} {r['images_per_s']:8.1f} img/s{extra}", flush=True)
    fit_rss_mib = training_peak_rss_mib()
    print(f"peak memory (RSS) of a default tfgan fit: {fit_rss_mib:.0f} MiB")
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak memory (RSS) of this benchmark process: {peak_rss_mib:.0f} MiB")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        json.dump({"peak_gflops": peaks, "train": rows, "levers": levers, "reference_images_per_s": reference, "inference_images_per_s": inference,
                   "peak_rss_mib": peak_rss_mib, "fit_peak_rss_mib": fit_rss_mib, "steps": args.steps, "machine": platform.processor() or platform.machine(),
                   "cpus": os.cpu_count(), "tensorflow": tf.__version__, "command": " ".join(sys.argv)}, f, indent=2)


if __name__ == "__main__":
    main()

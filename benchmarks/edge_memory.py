"""Memory of the device script over many frames: it must stay flat on a camera that runs for months.

    python benchmarks/edge_memory.py MODEL.tflite FRAME_DIR [--frames-total 10000]

Runs edge_infer's own code path (decode, resize, interpreter) frame after frame, cycling through
the images in FRAME_DIR, and prints the resident memory every 1,000 frames.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from contextlib import redirect_stdout

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "export"))
import edge_infer  # noqa: E402  the standalone script, exactly as it ships


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("frames")
    parser.add_argument("--frames-total", dest="total", type=int, default=10_000)
    args = parser.parse_args()
    model = edge_infer.EdgeModel(args.model)
    paths = edge_infer.list_frames([args.frames])
    samples, latencies = [], []
    start = time.perf_counter()
    sink = io.StringIO()
    for i in range(args.total):
        with redirect_stdout(sink):
            edge_infer.process(model, paths[i % len(paths)], True, latencies)
        sink.seek(0)
        sink.truncate()
        if (i + 1) % 1000 == 0:
            samples.append(rss_mib())
            print(f"{i + 1:6d} frames  RSS {samples[-1]:7.1f} MiB", flush=True)
    seconds = time.perf_counter() - start
    print(f"RSS growth from frame 1,000 to {args.total:,}: {samples[-1] - samples[0]:+.1f} MiB; "
          f"{args.total / seconds:.0f} frames/s including decode and resize")


if __name__ == "__main__":
    main()

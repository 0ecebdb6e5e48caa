#!/usr/bin/env python3
"""On-device GANomaly inference: numpy, Pillow and ai-edge-litert (or tflite_runtime) only.

Copy this one file and MODEL.tflite with its MODEL.tflite.json sidecar to the camera:

    python edge_infer.py MODEL.tflite IMAGE_OR_DIR... [--threads N] [--json] [--benchmark]
    python edge_infer.py MODEL.tflite --stream INCOMING_DIR   # frames as the camera drops them

Preprocessing (size, channels, resize method) and calibration come from the model and its
sidecar, so this script needs no knowledge of training. One line per frame; an unreadable
frame prints an error line and the script goes on. Exit status: 0 all normal, 1 some frame
anomalous, 2 some frame failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np
from PIL import Image

Image.MAX_IMAGE_PIXELS = 64_000_000  # refuse decompression bombs instead of exhausting memory
EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif")
RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "nearest": Image.Resampling.NEAREST,
            "bicubic": Image.Resampling.BICUBIC, "area": Image.Resampling.BOX}


class EdgeError(Exception):
    """A problem with the model or its sidecar: fatal, reported in one line."""


def load_interpreter(model_path: str, threads: int):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise EdgeError("no TFLite runtime: pip install ai-edge-litert (or tflite-runtime)") from None
    try:
        return Interpreter(model_path=model_path, num_threads=threads)
    except (ValueError, RuntimeError) as e:
        raise EdgeError(f"{model_path} is not a loadable TFLite model ({str(e).splitlines()[0]})") from None


class EdgeModel:
    """The exported model, its input spec checked against the sidecar."""

    def __init__(self, model_path: str, threads: int = 1):
        sidecar_path = model_path + ".json"
        try:
            with open(sidecar_path) as f:
                self.meta = json.load(f)
        except FileNotFoundError:
            raise EdgeError(f"sidecar {sidecar_path} not found; copy it next to the model") from None
        except ValueError as e:
            raise EdgeError(f"sidecar {sidecar_path} is not valid JSON ({e})") from None
        spec = self.meta.get("input", {})
        try:
            self.isize, self.nc, self.resize = int(spec["isize"]), int(spec["nc"]), spec["resize"]
        except (KeyError, TypeError, ValueError):
            raise EdgeError(f"sidecar {sidecar_path} has no valid input spec (isize, nc, resize)") from None
        interpreter = load_interpreter(model_path, threads)
        self.runner = interpreter.get_signature_runner()
        inputs = self.runner.get_input_details()
        self.input_name = spec.get("name") or next(iter(inputs))
        detail = inputs.get(self.input_name)
        expected = [1, self.isize, self.isize, self.nc]
        if detail is None or list(detail["shape"]) != expected or np.dtype(detail["dtype"]) != np.uint8:
            got = None if detail is None else (list(detail["shape"]), np.dtype(detail["dtype"]).name)
            raise EdgeError(f"{model_path} input {got} does not match its sidecar {expected} uint8; "
                            f"re-export the model and sidecar together")

    def preprocess(self, path: str) -> np.ndarray:
        """Decode and resize exactly as training did (the recorded size, channels and method)."""
        with Image.open(path) as image:
            image.load()
            if image.mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.uint32)
                image = Image.fromarray((array >> 8).clip(0, 255).astype(np.uint8))
            if image.mode in ("LA", "PA"):
                image = image.convert("L") if self.nc == 1 else image.convert("RGB")
            image = image.convert("L" if self.nc == 1 else "RGB")
            image = image.resize((self.isize, self.isize), RESAMPLE[self.resize])
            array = np.asarray(image, dtype=np.uint8)
        return array.reshape(self.isize, self.isize, self.nc)

    def __call__(self, image: np.ndarray) -> dict:
        out = self.runner(**{self.input_name: image[None]})
        score = float(np.ravel(out["score"])[0])
        normalized = float(np.ravel(out["normalized_score"])[0])
        return {"score": score, "normalized_score": normalized, "anomalous": normalized > 0.5}


def list_frames(inputs) -> list[str]:
    frames = []
    for item in inputs:
        if os.path.isdir(item):
            frames += sorted(os.path.join(item, n) for n in os.listdir(item)
                             if n.lower().endswith(EXTENSIONS) and os.path.isfile(os.path.join(item, n)))
        else:
            frames.append(item)
    return frames


def process(model: EdgeModel, path: str, as_json: bool, latencies: list) -> dict:
    try:
        start = time.perf_counter()
        result = {"path": path, **model(model.preprocess(path))}
        latencies.append(time.perf_counter() - start)
    except Exception as e:  # a bad frame must never stop the camera
        result = {"path": path, "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
    if as_json:
        print(json.dumps(result), flush=True)
    elif "error" in result:
        print(f"{path}\tERROR\t{result['error']}", flush=True)
    else:
        verdict = "ANOMALOUS" if result["anomalous"] else "normal"
        print(f"{path}\t{result['score']:.6g}\t{result['normalized_score']:.4f}\t{verdict}", flush=True)
    return result


def stream(model: EdgeModel, directory: str, args, latencies: list, tally: dict) -> None:
    """Poll a directory; a frame is read once its size is unchanged between two polls, and only once."""
    seen, sizes, idle_since = set(), {}, time.monotonic()
    while args.max_frames is None or tally["frames"] < args.max_frames:
        progressed = False
        for path in list_frames([directory]):
            if path in seen:
                continue
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if size == 0 or sizes.get(path) != size:
                sizes[path] = size  # still being written (or new): look again next poll
                continue
            seen.add(path)
            sizes.pop(path, None)
            _count(tally, process(model, path, args.json, latencies))
            progressed = True
            if args.max_frames is not None and tally["frames"] >= args.max_frames:
                return
        if progressed:
            idle_since = time.monotonic()
        elif args.idle_timeout and time.monotonic() - idle_since > args.idle_timeout:
            return
        time.sleep(args.poll)


def _count(tally: dict, result: dict) -> None:
    tally["frames"] += 1
    tally["failed"] += "error" in result
    tally["anomalous"] += bool(result.get("anomalous"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model", help="MODEL.tflite (its MODEL.tflite.json sidecar must sit beside it)")
    parser.add_argument("inputs", nargs="*", help="image files or directories")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="one JSON object per frame")
    parser.add_argument("--benchmark", action="store_true", help="print latency percentiles and images/s")
    parser.add_argument("--stream", metavar="DIR", help="process frames as they arrive in DIR")
    parser.add_argument("--poll", type=float, default=0.2, help="stream poll interval in seconds")
    parser.add_argument("--idle-timeout", type=float, default=None, help="stop streaming after this many idle seconds")
    parser.add_argument("--max-frames", type=int, default=None, help="stop after this many frames")
    args = parser.parse_args(argv)
    if not args.inputs and not args.stream:
        parser.error("give images or directories, or --stream DIR")
    try:
        model = EdgeModel(args.model, args.threads)
    except EdgeError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    latencies, tally = [], {"frames": 0, "failed": 0, "anomalous": 0}
    try:
        if args.stream:
            stream(model, args.stream, args, latencies, tally)
        else:
            for path in list_frames(args.inputs):
                _count(tally, process(model, path, args.json, latencies))
    except KeyboardInterrupt:
        pass
    if args.benchmark and latencies:
        ms = 1000 * np.asarray(latencies)
        print(f"benchmark: {len(ms)} frames, p50 {np.percentile(ms, 50):.3f} ms, p90 {np.percentile(ms, 90):.3f} ms, "
              f"p99 {np.percentile(ms, 99):.3f} ms, {len(ms) / (ms.sum() / 1000):.1f} images/s "
              f"(decode + resize + inference, {args.threads} thread(s))", file=sys.stderr)
    print(f"{tally['frames']} frames: {tally['anomalous']} anomalous, {tally['failed']} failed", file=sys.stderr)
    return 2 if tally["failed"] else 1 if tally["anomalous"] else 0


if __name__ == "__main__":
    sys.exit(main())

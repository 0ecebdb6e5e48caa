"""One-class accuracy benchmark: AUROC per class under the clean and reference-compatible protocols.

    python benchmarks/accuracy.py --datasets mnist fashion_mnist magnetic_tile --epochs 15 --seeds 0 1 2

A full run (15 epochs x 10 classes x several seeds) takes hours on 2 CPU cores, so the budget
(--epochs, --max-train, --classes, --seeds) is recorded beside every number. Writes JSON and a
markdown table to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tfganomaly.config import GANomalyConfig  # noqa: E402
from tfganomaly.data import DatasetSpec, ImageSpec  # noqa: E402
from tfganomaly.evaluation import evaluate  # noqa: E402
from tfganomaly.training import auto_precision, fit_run  # noqa: E402

SHARED = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data")


def one_run(dataset: str, anomaly_class, seed: int, args) -> dict:
    if dataset == "magnetic_tile":
        data = DatasetSpec(dataset="folder", data_dir=os.path.join(SHARED, "magnetic_tile"), seed=seed,
                           max_train=args.max_train)
        config = GANomalyConfig(isize=64, epochs=args.epochs, seed=seed, precision=args.precision)
    else:
        data = DatasetSpec(dataset=dataset, data_dir=os.path.join(SHARED, dataset), protocol="paper",
                           anomaly_class=(str(anomaly_class),), seed=seed, max_train=args.max_train)
        config = GANomalyConfig(isize=32, epochs=args.epochs, seed=seed, precision=args.precision)
    started = time.time()
    with tempfile.TemporaryDirectory() as out:
        result = fit_run(config, data, out=out, verbose=0)
        spec = ImageSpec.of(config)
        reference = evaluate(result.model, result.splits.test, spec, "reference").metrics["auroc"]
    return {"dataset": dataset, "anomaly_class": anomaly_class, "seed": seed,
            "clean_auroc": result.metrics["test_auroc"], "reference_auroc": reference,
            "protocol": result.splits.info["protocol"], "n_train": len(result.splits.train),
            "n_test": len(result.splits.test), "seconds": time.time() - started}


def markdown(rows: list, budget: dict) -> str:
    lines = [f"Budget: {json.dumps(budget)}", "",
             "| dataset | anomaly class | clean AUROC | reference-compatible AUROC | runs |", "|---|---|---|---|---|"]
    by_key = {}
    for r in rows:
        by_key.setdefault((r["dataset"], r["anomaly_class"]), []).append(r)
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        keys = [k for k in by_key if k[0] == dataset]
        for key in keys:
            rs = by_key[key]
            label = "every defect type (given split, 64x64)" if key[1] is None else key[1]
            lines.append(f"| {dataset} | {label} | {np.mean([r['clean_auroc'] for r in rs]):.3f} | "
                         f"{np.mean([r['reference_auroc'] for r in rs]):.3f} | {len(rs)} |")
        everything = [r for k in keys for r in by_key[k]]
        lines.append(f"| **{dataset} mean** | | **{np.mean([r['clean_auroc'] for r in everything]):.3f}** | "
                     f"**{np.mean([r['reference_auroc'] for r in everything]):.3f}** | {len(everything)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["mnist", "fashion_mnist", "magnetic_tile"])
    parser.add_argument("--classes", nargs="+", type=int, default=list(range(10)))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--max-train", type=int, default=None)
    parser.add_argument("--precision", choices=["auto", "float32", "mixed_bfloat16", "mixed_float16"], default="auto",
                        help="auto: as tfgan fit, mixed_bfloat16 where the hardware has it")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "accuracy"))
    args = parser.parse_args()
    if args.precision == "auto":
        args.precision = auto_precision()
    budget = {"epochs": args.epochs, "max_train": args.max_train, "seeds": args.seeds, "precision": args.precision,
              "classes": args.classes, "command": " ".join(["python"] + sys.argv)}
    rows = []
    for dataset in args.datasets:
        for anomaly_class in ([None] if dataset == "magnetic_tile" else args.classes):
            for seed in args.seeds:
                row = one_run(dataset, anomaly_class, seed, args)
                rows.append(row)
                print(f"{dataset} class {anomaly_class} seed {seed}: clean {row['clean_auroc']:.3f}, "
                      f"reference-compatible {row['reference_auroc']:.3f} ({row['seconds']:.0f} s)", flush=True)
                os.makedirs(os.path.dirname(args.out), exist_ok=True)
                with open(args.out + ".json", "w") as f:
                    json.dump({"budget": budget, "runs": rows}, f, indent=2)
                with open(args.out + ".md", "w") as f:
                    f.write(markdown(rows, budget))
    print(markdown(rows, budget))


if __name__ == "__main__":
    main()

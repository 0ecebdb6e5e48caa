"""`tfgan score RUN_DIR IMAGE_OR_DIR...`: one JSON line per image. Exit 0 all normal, 1 any anomalous, 2 errors."""

from __future__ import annotations

import json
import os

import click

MAP_SCALE = 0.5  # fixed, so a clean part looks dark and a defect bright on its own


@click.command("score")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--maps", "maps_dir", type=click.Path(file_okay=False), default=None,
              help="Also write each image's anomaly map as a PNG heatmap here.")
@click.option("--smooth", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Gaussian smoothing of the maps, in pixels.")
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
def command(run_dir, inputs, maps_dir, smooth, batch_size):
    """Score single images or directories with a calibrated run; verdicts need no test set."""
    from tfganomaly.data import ImageSpec, list_images, load_images
    from tfganomaly.errors import DataError
    from tfganomaly.report import heatmap, write_png
    from tfganomaly.runs import load_run

    model = load_run(run_dir).model
    paths = []
    for item in inputs:
        found = list_images(item) if os.path.isdir(item) else [item]
        if os.path.isdir(item) and not found:
            raise DataError(f"no PNG/JPEG/BMP images in {item}")
        paths += found
    images, kept, errors = load_images(paths, ImageSpec.of(model.config), skip_bad=True)
    for path, message in errors.items():
        click.echo(json.dumps({"path": path, "error": message}))
    any_anomalous = False
    if len(kept):
        verdicts = model.verdicts(images, batch_size)
        scores, normalized, labels = verdicts["score"], verdicts["normalized_score"], verdicts["label"]
        maps = model.anomaly_maps(images, batch_size, sigma=smooth) if maps_dir else None
        for i, path in enumerate(kept):
            click.echo(json.dumps({"path": path, "score": float(scores[i]),
                                   "normalized_score": float(normalized[i]), "label": int(labels[i])}))
            if maps is not None:
                stem = os.path.splitext(os.path.basename(path))[0]
                write_png(os.path.join(maps_dir, f"{stem}_map.png"), heatmap(maps[i:i + 1], scale=MAP_SCALE)[0])
        any_anomalous = bool(labels.any())
    raise SystemExit(2 if errors else 1 if any_anomalous else 0)

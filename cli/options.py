"""Options shared by several subcommands, declared once."""

from __future__ import annotations

import click

DATASET_HELP = "digits (built in), mnist, fashion_mnist, folder, npz, or tfds:NAME"


def dataset_options(func):
    """--dataset and friends: which data, and how it is split."""
    options = [
        click.option("--dataset", default=None, help=f"Data source: {DATASET_HELP}."),
        click.option("--data-dir", type=click.Path(), default=None,
                     help="Directory (idx files, image folder, TFDS data) or .npz file. For TFDS with "
                          "--manual-dir it may be new: the dataset is prepared into it."),
        click.option("--manual-dir", type=click.Path(exists=True, file_okay=False), default=None,
                     help="TFDS only: prepare the dataset offline from the files in this directory."),
        click.option("--protocol", type=click.Choice(["paper", "given"]), default=None,
                     help="paper: pool normals, 80/20 split, all anomalies in test. given: the dataset's own split."),
        click.option("--anomaly-class", multiple=True, help="Class treated as anomalous (repeatable)."),
        click.option("--normal-class", multiple=True, help="Class treated as normal; all others are anomalies."),
        click.option("--val-fraction", type=click.FloatRange(0, 1, max_open=True), default=None,
                     help="Share of training normals held out for calibration [default: 0.1]."),
        click.option("--max-train", type=click.IntRange(1), default=None, help="Cap the training images."),
        click.option("--skip-bad-images", is_flag=True, default=None,
                     help="Skip unreadable image files with a warning instead of stopping."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def dataset_spec(base=None, **kwargs):
    """A DatasetSpec from the given options; unset options keep the values of `base`."""
    from tfganomaly.data import DatasetSpec
    spec = (base or DatasetSpec()).to_dict()
    for key in ("dataset", "data_dir", "manual_dir", "protocol", "val_fraction", "max_train", "skip_bad_images"):
        if kwargs.get(key) is not None:
            spec[key] = kwargs[key]
    if kwargs.get("dataset") is not None and base is not None and kwargs["dataset"] != base.dataset:
        spec["anomaly_class"], spec["normal_class"] = [], []
    for key in ("anomaly_class", "normal_class"):
        if kwargs.get(key):
            spec[key] = list(kwargs[key])
    if kwargs.get("seed") is not None:
        spec["seed"] = kwargs["seed"]
    return DatasetSpec.from_dict(spec)


def echo_table(rows, headers) -> None:
    """A compact aligned table on stdout."""
    rows = [[str(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    click.echo("  ".join(h.ljust(w) for h, w in zip(headers, widths)))
    for r in rows:
        click.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)))

"""Pictures people would rather look at than read: image grids (TensorFlow only) and, with the
optional matplotlib extra, ROC/PR curves and score histograms."""

from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from .runs import atomic_path


def write_png(path: str, image: np.ndarray) -> None:
    """uint8 HW or HWC -> PNG, atomically."""
    image = np.asarray(image, np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    data = tf.io.encode_png(image).numpy()
    with atomic_path(path, suffix=".png") as tmp, open(tmp, "wb") as f:
        f.write(data)


def heatmap(maps: np.ndarray, scale: float | None = None) -> np.ndarray:
    """[0, 1] maps -> uint8 RGB with a black-red-yellow-white ramp. By default scaled to the batch
    maximum so faint differences stay visible; a fixed scale makes single images comparable."""
    m = np.asarray(maps, np.float32)
    m = np.clip(m / max(float(scale or m.max()), 1e-6), 0, 1)
    rgb = np.stack([np.clip(3 * m, 0, 1), np.clip(3 * m - 1, 0, 1), np.clip(3 * m - 2, 0, 1)], -1)
    return (rgb * 255).astype(np.uint8)


def _rgb(images: np.ndarray) -> np.ndarray:
    return np.repeat(images, 3, axis=-1) if images.shape[-1] == 1 else images


def comparison_grid(images: np.ndarray, reconstructions: np.ndarray, maps: np.ndarray,
                    pad: int = 2, min_cell: int = 96) -> np.ndarray:
    """One row per image: input | reconstruction | anomaly map, as a uint8 RGB array. Small
    images are enlarged (nearest neighbour) to at least min_cell pixels so defects are visible."""
    scale = max(1, min_cell // images.shape[1])
    rows = [np.concatenate([_rgb(x), _rgb(r), h], axis=1).repeat(scale, axis=0).repeat(scale, axis=1)
            for x, r, h in zip(images, reconstructions, heatmap(maps))]
    rows = [np.pad(row, ((pad, pad), (pad, pad), (0, 0)), constant_values=255) for row in rows]
    return np.concatenate(rows, axis=0) if rows else np.zeros((1, 1, 3), np.uint8)


def write_extremes_grid(path: str, model, images: np.ndarray, scores: np.ndarray, k: int = 8) -> None:
    """The k most and k least anomalous test images, side by side with what the model made of them."""
    order = np.argsort(scores)
    picks = np.concatenate([order[::-1][:k], order[:k]])
    chosen = images[picks]
    grid = comparison_grid(chosen, model.reconstruct(chosen), model.anomaly_maps(chosen))
    write_png(path, grid)


def matplotlib_available() -> bool:
    try:
        import matplotlib  # noqa: F401
        return True
    except ImportError:
        return False


def _save_figure(fig, path: str) -> None:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")


def write_plots(out_dir: str, labels, scores, threshold: float, latent, title: str) -> list[str]:
    """ROC, PR, score histogram with the threshold, latent-distance distribution. Returns paths."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import precision_recall_curve, roc_curve

    labels, scores, latent = np.asarray(labels), np.asarray(scores), np.asarray(latent)
    written = []

    fpr, tpr, _ = roc_curve(labels, scores)
    precision, recall, _ = precision_recall_curve(labels, scores)
    for name, (x, y, xl, yl) in {"roc.png": (fpr, tpr, "false-positive rate", "true-positive rate"),
                                 "pr.png": (recall, precision, "recall", "precision")}.items():
        fig, ax = plt.subplots(figsize=(4.5, 4))
        ax.plot(x, y)
        if name == "roc.png":
            ax.plot([0, 1], [0, 1], "--", color="grey", lw=0.8)
        ax.set(xlabel=xl, ylabel=yl, title=title)
        _save_figure(fig, os.path.join(out_dir, name))
        plt.close(fig)
        written.append(os.path.join(out_dir, name))

    for name, values, xlabel, mark in (("histogram.png", scores, "anomaly score", threshold),
                                       ("latent_distance.png", latent, "latent distance ||GE(x)-E(G(x))||²", None)):
        fig, ax = plt.subplots(figsize=(5.5, 3.5))
        bins = np.histogram_bin_edges(values, bins=40)
        ax.hist(values[labels == 0], bins=bins, alpha=0.6, label="normal")
        ax.hist(values[labels == 1], bins=bins, alpha=0.6, label="anomalous")
        if mark is not None:
            ax.axvline(mark, color="black", ls="--", label="threshold")
        ax.set(xlabel=xlabel, ylabel="images", title=title)
        ax.legend()
        _save_figure(fig, os.path.join(out_dir, name))
        plt.close(fig)
        written.append(os.path.join(out_dir, name))
    return written

"""`tfgan export RUN_DIR --tflite`: the calibrated scoring path as a verified TFLite model."""

from __future__ import annotations

import click

from .options import echo_table


@click.command("export")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--tflite", is_flag=True, required=True, help="Export to TensorFlow Lite (the only format).")
@click.option("--quantize", type=click.Choice(["int8", "float16", "dynamic", "float32"]), default="int8",
              show_default=True)
@click.option("--out", type=click.Path(dir_okay=False), default=None,
              help="Output .tflite [default: RUN_DIR/export/model_<quantize>.tflite].")
@click.option("--with-map", is_flag=True, help="Also output the per-pixel anomaly map.")
@click.option("--max-auroc-drop", type=click.FloatRange(0), default=0.01, show_default=True,
              help="Fail when TFLite AUROC is this much below Keras on the test split.")
@click.option("--max-verify", type=click.IntRange(1), default=None,
              help="Verify on at most this many test images [default: all].")
def command(run_dir, tflite, quantize, out, with_map, max_auroc_drop, max_verify):
    """Export, then check the .tflite with the real interpreter against the Keras model."""
    from tfganomaly.export.tflite import export_tflite
    from tfganomaly.runs import load_run

    result = export_tflite(load_run(run_dir), quantize, out, with_map, max_auroc_drop, max_verify)
    fmt = lambda v, spec: "-" if v is None else format(v, spec)  # noqa: E731
    echo_table([["AUROC", fmt(result["keras_auroc"], ".4f"), fmt(result["tflite_auroc"], ".4f")],
                ["latency per image (ms, 1 thread)", fmt(result["keras_latency_ms"], ".3f"),
                 fmt(result["tflite_latency_ms"], ".3f")],
                ["size (KiB)", "-", f"{result['tflite_bytes'] / 1024:.0f}"]],
               ["", "keras", f"tflite {quantize}"])
    click.echo(f"score correlation {result['score_correlation']:.4f}, verdict agreement "
               f"{result['verdict_agreement']:.1%} on {result['n_images']} test images")
    click.echo(f"wrote {result['path']} and {result['sidecar']}")

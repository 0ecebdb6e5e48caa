"""`tfgan evaluate RUN_DIR`: metrics under both protocols, and pictures, on the run's test split."""

from __future__ import annotations

import click

from .options import dataset_options, dataset_spec, echo_table


@click.command("evaluate")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False))
@dataset_options
@click.option("--out", type=click.Path(file_okay=False), default=None, help="Output directory [default: RUN_DIR/eval].")
def command(run_dir, out, **options):
    """Evaluate a trained run (by default on the exact test split `tfgan fit` used)."""
    from tfganomaly.data import load_dataset
    from tfganomaly.evaluation import evaluate_run
    from tfganomaly.runs import load_run

    run = load_run(run_dir)
    splits = load_dataset(dataset_spec(run.dataset_spec, **options))
    click.echo(splits.summary())
    results = evaluate_run(run, splits, out)
    clean, ref = results["clean"], results["reference_compatible"]
    rows = [["AUROC", f"{clean['auroc']:.4f}", f"{ref['auroc']:.4f}"],
            ["AUPRC", f"{clean['auprc']:.4f}", "-"],
            ["EER", f"{clean['eer']:.4f}", "-"],
            [f"F1 @ threshold {clean['threshold']:.4g}", f"{clean['f1']:.4f}", "-"],
            ["precision / recall", f"{clean['precision']:.3f} / {clean['recall']:.3f}", "-"],
            ["FPR on normals", f"{clean['fpr']:.4f}", "-"]]
    if clean.get("pixel_auroc") is not None:
        rows.append(["pixel AUROC", f"{clean['pixel_auroc']:.4f}", "-"])
    rows += [[f"AUROC {defect}", f"{value:.4f}", "-"] for defect, value in clean["per_defect_auroc"].items()]
    echo_table(rows, ["metric", "clean", "reference-compatible"])
    click.echo(f"clean = {clean['protocol']}")
    click.echo(f"reference-compatible = {ref['protocol']}")
    if results["plots_note"]:
        click.echo(results["plots_note"])
    click.echo(f"wrote metrics.json and {', '.join(results['pictures'])} to {out or run_dir + '/eval'}")

"""`tfgan fit`: train GANomaly on normal images, calibrate, and write a run directory."""

from __future__ import annotations

import os
import time

import click

from .options import dataset_options, dataset_spec


@click.command("fit")
@dataset_options
@click.option("--epochs", type=click.IntRange(1), default=15, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--isize", type=int, default=32, show_default=True, help="Image size, a power of two >= 16.")
@click.option("--nc", type=click.Choice(["1", "3"]), default="1", show_default=True, help="Channels: 1 grey, 3 RGB.")
@click.option("--nz", type=click.IntRange(1), default=100, show_default=True, help="Latent size.")
@click.option("--ngf", type=click.IntRange(1), default=64, show_default=True)
@click.option("--ndf", type=click.IntRange(1), default=64, show_default=True)
@click.option("--extra-layers", type=click.IntRange(0), default=0, show_default=True)
@click.option("--w-adv", type=float, default=1.0, show_default=True)
@click.option("--w-con", type=float, default=50.0, show_default=True)
@click.option("--w-enc", type=float, default=1.0, show_default=True)
@click.option("--lr", type=float, default=2e-4, show_default=True)
@click.option("--beta1", type=float, default=0.5, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resize", type=click.Choice(["bilinear", "nearest", "bicubic", "area"]), default="bilinear",
              show_default=True)
@click.option("--xla/--no-xla", default=None, help="Compile the train step with XLA [default: on with a GPU].")
@click.option("--precision", type=click.Choice(["auto", "float32", "mixed_bfloat16", "mixed_float16"]),
              default="auto", show_default=True,
              help="auto = mixed_bfloat16 where the CPU or GPU computes bfloat16 natively, else float32.")
@click.option("--strategy", type=click.Choice(["default", "mirrored", "multiworker", "tpu"]), default="default",
              show_default=True, help="tf.distribute strategy: mirrored = all local GPUs, multiworker reads TF_CONFIG.")
@click.option("--sync-bn", is_flag=True, help="Synchronise BatchNorm statistics across replicas.")
@click.option("--collective-timeout", type=click.FloatRange(1), default=60.0, show_default=True,
              help="multiworker: seconds before a silent worker fails the run.")
@click.option("--fpr", type=click.FloatRange(0, 1, max_open=True), default=0.01, show_default=True,
              help="Target false-positive rate on normals for the threshold.")
@click.option("--score-mode", type=click.Choice(["latent", "reconstruction", "combined"]), default="latent",
              show_default=True)
@click.option("--out", type=click.Path(file_okay=False), default="runs", show_default=True,
              help="Parent directory of run directories.")
@click.option("--name", default=None, help="Run directory name [default: a timestamp].")
@click.option("--checkpoint-every", type=click.IntRange(1), default=None,
              help="Also checkpoint every N training steps (always: every epoch).")
@click.option("--resume", type=click.Path(exists=True, file_okay=False), default=None,
              help="Continue a killed run from its last checkpoint, with its own settings.")
def command(resume, checkpoint_every, out, name, fpr, score_mode, xla, nc, strategy, sync_bn, collective_timeout, **options):
    """Train on normal images (default: the built-in digits, digit 0 as the anomaly)."""
    from tfganomaly.config import GANomalyConfig
    from tfganomaly.data import DatasetSpec
    from tfganomaly.runs import RUN_FILE, read_json
    from tfganomaly.distributed import make_strategy
    from tfganomaly.training import auto_jit_compile, auto_precision, fit_run

    if resume:
        info = read_json(os.path.join(resume, RUN_FILE))
        config, data = GANomalyConfig.from_dict(info["config"]), DatasetSpec.from_dict(info["data"])
        fpr, score_mode = info["fpr"], info["score_mode"]
    else:
        config = GANomalyConfig(
            isize=options["isize"], nc=int(nc), nz=options["nz"], ngf=options["ngf"], ndf=options["ndf"],
            extra_layers=options["extra_layers"], w_adv=options["w_adv"], w_con=options["w_con"],
            w_enc=options["w_enc"], lr=options["lr"], beta1=options["beta1"], batch_size=options["batch_size"],
            epochs=options["epochs"], seed=options["seed"], resize=options["resize"],
            jit_compile=auto_jit_compile() if xla is None else xla,
            precision=auto_precision() if options["precision"] == "auto" else options["precision"],
            sync_batchnorm=sync_bn)
        data = dataset_spec(**options)
    started = time.time()
    from tfganomaly.data import load_dataset
    splits = load_dataset(data)
    click.echo(splits.summary())
    click.echo(f"training in {config.precision}{' with XLA' if config.jit_compile else ''}")
    result = fit_run(config, data, out=out, name=name, fpr=fpr, score_mode=score_mode, resume=resume,
                     splits=splits, strategy=make_strategy(strategy, collective_timeout),
                     checkpoint_every=checkpoint_every)
    if result.run_dir is None:
        click.echo("worker finished (only the chief writes the run directory)")
        return
    elapsed = time.time() - started
    cal = result.model.calibration
    click.echo(f"threshold {cal.threshold:.6g} ({score_mode} score, {fpr:.1%} target FPR on "
               f"{cal.n_validation} validation normals)")
    if result.metrics["test_auroc"] is not None:
        click.echo(f"test AUROC {result.metrics['test_auroc']:.4f} ({splits.info['protocol']} protocol, "
                   f"clean scoring); {len(splits.test)} test images")
    else:
        click.echo("no labelled test set with both classes: AUROC not computed")
    click.echo(f"run saved to {result.run_dir} in {elapsed:.0f} s")

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import run_cli, shared_data

TF_LOG_PREFIXES = ("I0000", "W0000", "E0000", "WARNING: All log messages before absl")


def test_fit_end_to_end_on_builtin_digits(tmp_path):
    result = run_cli("fit", "--epochs", "2", "--out", str(tmp_path), "--name", "r")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "test AUROC" in result.stdout
    run = tmp_path / "r"
    assert {"model.keras", "run.json", "metrics.json", "logs"} <= set(os.listdir(run))
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(metrics["history"]["g_loss"]) == 2 and 0 <= metrics["test_auroc"] <= 1
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "complete" and info["data"]["dataset"] == "digits"
    # --precision auto resolves to this machine's fastest setting, said and recorded as a concrete one
    from tfganomaly.training import auto_precision
    assert info["config"]["precision"] == auto_precision()
    assert f"training in {auto_precision()}" in result.stdout


def test_fit_and_evaluate_magnetic_tile(tmp_path):
    root = shared_data("magnetic_tile")
    fit = run_cli("fit", "--dataset", "folder", "--data-dir", root, "--isize", "64", "--epochs", "1",
                  "--max-train", "128", "--out", str(tmp_path), "--name", "tile")
    assert fit.returncode == 0, fit.stderr[-2000:]
    run = str(tmp_path / "tile")
    ev = run_cli("evaluate", run)
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert "reference-compatible" in ev.stdout and "pixel AUROC" in ev.stdout
    results = json.loads(open(os.path.join(run, "eval", "metrics.json")).read())
    assert set(results["clean"]["per_defect_auroc"]) == set(os.listdir(os.path.join(root, "test"))) - {"good"}
    assert results["clean"]["protocol"].startswith("clean") and results["reference_compatible"]["protocol"].startswith("reference")
    assert 0 <= results["clean"]["pixel_auroc"] <= 1
    grid = tf.io.decode_png(tf.io.read_file(os.path.join(run, "eval", "extremes.png"))).numpy()
    assert grid.shape == (16 * (64 + 4), 3 * 64 + 4, 3)
    for name in ("roc.png", "pr.png", "histogram.png", "latent_distance.png"):
        assert tf.io.decode_png(tf.io.read_file(os.path.join(run, "eval", name))).shape[0] > 100


def test_score_single_files_directories_and_exit_codes(digits_run, digits_test_images, tmp_path):
    images, labels = digits_test_images
    verdicts = digits_run.model.verdicts(images)
    normal = int(np.flatnonzero(verdicts["label"] == 0)[0])
    anomalous = int(np.flatnonzero(verdicts["label"] == 1)[0])
    for name, i in (("normal.png", normal), ("anomalous.png", anomalous)):
        (tmp_path / name).write_bytes(tf.io.encode_png(images[i]).numpy())
    run = digits_run.run_dir
    one = run_cli("score", run, str(tmp_path / "normal.png"))
    assert one.returncode == 0, one.stderr[-2000:]
    line = json.loads(one.stdout.strip().splitlines()[-1])
    assert line["label"] == 0 and line["score"] == pytest.approx(float(verdicts["score"][normal]), rel=1e-3)
    both = run_cli("score", run, str(tmp_path), "--maps", str(tmp_path / "maps"))
    assert both.returncode == 1
    assert sorted(os.listdir(tmp_path / "maps")) == ["anomalous_map.png", "normal_map.png"]
    (tmp_path / "broken.png").write_bytes(b"\x89PNG broken")
    bad = run_cli("score", run, str(tmp_path))
    assert bad.returncode == 2 and '"error"' in bad.stdout


@pytest.mark.parametrize("args,fragment", [
    (["fit", "--isize", "48"], "power of two"),
    (["fit", "--dataset", "mnist"], "--data-dir is required"),
    (["fit", "--anomaly-class", "12"], "class '12' does not exist"),
    (["evaluate", "."], "not a tfganomaly run"),
])
def test_user_errors_are_one_line_with_exit_2(args, fragment):
    result = run_cli(*args)
    assert result.returncode == 2
    assert fragment in result.stderr and "Traceback" not in result.stderr
    ours = [line for line in result.stderr.strip().splitlines() if not line.startswith(TF_LOG_PREFIXES)]
    assert len(ours) == 1, result.stderr


def test_unsafe_model_file_is_refused(digits_run, tmp_path):
    """A .keras whose config asks for a Lambda layer (arbitrary code) is refused by safe_mode."""
    import zipfile
    run = tmp_path / "run"
    shutil.copytree(digits_run.run_dir, run)
    model_path = run / "model.keras"
    with zipfile.ZipFile(model_path) as z:
        files = {n: z.read(n) for n in z.namelist()}
    config = json.loads(files["config.json"])
    config["config"]["lambda_payload"] = {"class_name": "Lambda", "config": {"function": {
        "class_name": "__lambda__", "config": {"code": "print('pwned')", "defaults": None, "closure": None}}}}
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(model_path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    result = run_cli("score", str(run), str(run / "run.json"))
    assert result.returncode == 2 and "cannot load model" in result.stderr and "pwned" not in result.stdout

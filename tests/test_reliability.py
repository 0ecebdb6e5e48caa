import json
import os

import numpy as np
import pytest

from tfganomaly.config import GANomalyConfig
from tfganomaly.data import DatasetSpec
from tfganomaly.errors import RunError, TrainingDiverged
from tfganomaly.runs import atomic_path, load_run, read_json, write_json
from tfganomaly.training import fit_run


def test_nan_loss_stops_training_with_a_clear_message(tmp_path):
    config = GANomalyConfig(isize=16, ngf=8, ndf=8, nz=8, epochs=2, w_con=1e39)
    with pytest.raises(TrainingDiverged, match=r"became NaN/Inf at epoch 1, step 1; last good checkpoint: .*--lr"):
        fit_run(config, DatasetSpec(max_train=128), out=str(tmp_path), name="nan", verbose=0)
    assert not os.path.exists(tmp_path / "nan" / "model.keras")  # a NaN never becomes a model


def test_failed_write_leaves_previous_artifact_intact(tmp_path):
    path = str(tmp_path / "metrics.json")
    write_json(path, {"good": 1})
    with pytest.raises(ZeroDivisionError):
        with atomic_path(path) as tmp, open(tmp, "w") as f:
            f.write('{"trunc')
            1 / 0
    assert read_json(path) == {"good": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_not_a_run_and_incompatible_run_are_refused(tmp_path):
    with pytest.raises(RunError, match="not a tfganomaly run"):
        load_run(str(tmp_path))
    (tmp_path / "run.json").write_text(json.dumps({"format": 99}))
    with pytest.raises(RunError, match="incompatible"):
        load_run(str(tmp_path))


def test_resume_continues_to_the_same_epoch_count(tmp_path):
    """Train 1 of 3 epochs, then resume: the history is continuous and training completes."""
    config = GANomalyConfig(isize=16, ngf=8, ndf=8, nz=8, epochs=1)
    data = DatasetSpec(max_train=256)
    first = fit_run(config, data, out=str(tmp_path), name="r", verbose=0)
    info = read_json(os.path.join(first.run_dir, "run.json"))
    info["config"]["epochs"] = 3
    write_json(os.path.join(first.run_dir, "run.json"), info)
    resumed = fit_run(config.replace(epochs=3), data, resume=first.run_dir, verbose=0)
    history = resumed.metrics["history"]["g_loss"]
    assert len(history) == 3 and np.isfinite(history).all()
    assert history[0] == pytest.approx(first.metrics["history"]["g_loss"][0])


def test_step_checkpoints_are_written(tmp_path):
    config = GANomalyConfig(isize=16, ngf=8, ndf=8, nz=8, epochs=1, batch_size=32)
    result = fit_run(config, DatasetSpec(max_train=192), out=str(tmp_path), name="c", verbose=0, checkpoint_every=2)
    import tensorflow as tf
    state = tf.train.get_checkpoint_state(os.path.join(result.run_dir, "checkpoints"))
    # 6 steps: step checkpoints at 2, 4, 6 and one at the epoch's end, the last 2 kept
    assert state.model_checkpoint_path.endswith("-4")
    assert len(state.all_model_checkpoint_paths) == 2

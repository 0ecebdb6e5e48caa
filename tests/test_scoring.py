import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tfganomaly.errors import CalibrationError
from tfganomaly.scoring import calibrate, normalize_scores


def test_threshold_gives_target_fpr_on_held_out_normals(digits_run):
    """Calibrate on half the validation normals; the FPR on the other half is near the target."""
    from tfganomaly.data import ImageSpec
    model = digits_run.model
    images = digits_run.splits.validation.load(ImageSpec.of(model.config))
    parts = model.score_components(images)
    half = len(images) // 2
    cal = calibrate(parts["latent"][:half], parts["reconstruction"][:half], fpr=0.10)
    held_out_fpr = float(np.mean(parts["latent"][half:] > cal.threshold))
    assert held_out_fpr <= 0.25  # target 10% on ~65 normals; binomial noise allows some spread
    assert abs(cal.validation_fpr - 0.10) < 0.05


def test_f1_threshold_needs_labels_and_uses_them():
    rng = np.random.default_rng(0)
    latent = np.concatenate([rng.normal(1, 0.1, 50), rng.normal(2, 0.1, 20)])
    labels = np.r_[np.zeros(50), np.ones(20)]
    cal = calibrate(latent, latent, labels=labels, method="f1")
    assert 1.2 < cal.threshold < 1.8
    with pytest.raises(CalibrationError, match="labelled validation anomalies"):
        calibrate(latent[:50], latent[:50], method="f1")


def test_combined_mode_scales_parts_by_their_spread():
    rng = np.random.default_rng(0)
    latent, recon = rng.normal(10, 5, 200), rng.normal(0.1, 0.01, 200)
    cal = calibrate(latent, recon, score_mode="combined")
    assert cal.latent_scale == pytest.approx(np.std(latent)) and cal.reconstruction_scale == pytest.approx(np.std(recon))


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(0, 1e3, allow_nan=False), min_size=5, max_size=200),
       st.floats(0.001, 0.5))
def test_calibration_properties(scores, fpr):
    scores = np.asarray(scores)
    cal = calibrate(scores, scores, fpr=fpr)
    assert cal.validation_fpr <= fpr + 1e-9  # never more false alarms than asked for on validation
    normalized = np.asarray(normalize_scores(np.sort(scores), cal.threshold, cal.spread))
    assert np.all(np.diff(normalized) >= -1e-6)  # monotonic (up to float32 rounding)
    assert np.all((normalized >= 0) & (normalized <= 1))
    assert float(normalize_scores(np.array([cal.threshold]), cal.threshold, cal.spread)[0]) == pytest.approx(0.5)

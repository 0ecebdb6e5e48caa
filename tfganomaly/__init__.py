"""tfganomaly: GANomaly one-class anomaly detection with calibrated scores and TFLite export."""

__version__ = "0.1.0"

"""Edge export: the calibrated scoring path as TensorFlow Lite, and the device script."""

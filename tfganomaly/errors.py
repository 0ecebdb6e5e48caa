"""Errors a user can fix. Each message is one line: what went wrong, where, and how to fix it.
The CLI prints them without a traceback and exits 2."""


class TfganomalyError(ValueError):
    """Base of every user-facing error."""


class ConfigError(TfganomalyError):
    """A hyperparameter has a value the model cannot use."""


class DataError(TfganomalyError):
    """Missing, empty, corrupt or mislabelled data."""


class RunError(TfganomalyError):
    """A run directory or model file is missing, incomplete or incompatible."""


class CalibrationError(TfganomalyError):
    """Calibration is missing or cannot be computed from the data given."""


class MetricError(TfganomalyError):
    """A metric is undefined for the labels given (for example only one class)."""


class TrainingDiverged(TfganomalyError):
    """A loss became NaN or Inf."""


class ExportError(TfganomalyError):
    """An export failed its conversion or accuracy check."""


class WorkerLost(TfganomalyError):
    """Another worker of a distributed run stopped answering."""

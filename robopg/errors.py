"""Errors a user can cause (bad input, missing or foreign files, an environment that does not fit).

The command line turns any ``RobopgError`` into one line and exit code 2. This module imports nothing
heavy, so the torch-free paths (``robopg eval`` of an ONNX policy, the robot runtime) can catch them.
"""


class RobopgError(Exception):
    """Base of every error that is the input's fault, not a bug."""


class ConfigError(RobopgError, ValueError):
    """A configuration value is out of range, of the wrong type, or unknown."""


class EnvError(RobopgError, ValueError):
    """The environment cannot be made or does not fit the algorithm."""


class CheckpointError(RobopgError, ValueError):
    """A run folder or checkpoint file is missing, corrupt or of another kind."""


class RunDirError(RobopgError, ValueError):
    """The output folder cannot be used for this run."""


class BackendError(RobopgError, RuntimeError):
    """The requested parallel backend cannot run here."""


class WorkerFailure(RobopgError, RuntimeError):
    """A process training beside this one (an A3C worker, the evaluator, a run on the twin) died: training cannot go
    on."""


class ExportError(RobopgError, ValueError):
    """The policy cannot be exported, or the exported graph does not match the torch policy."""


class LogError(RobopgError, ValueError):
    """A robot trajectory log is missing, corrupt or not a log."""


class PolicyFileError(RobopgError, ValueError):
    """An ONNX policy file is missing, corrupt, not ours, or does not fit the robot or env."""


class OptionalDependencyError(RobopgError, ImportError):
    """A feature was asked for whose optional package is not installed."""


class TrackingError(RobopgError, RuntimeError):
    """The experiment tracker (Weights & Biases) refused to start a run."""

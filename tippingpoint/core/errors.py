"""The exception tree of tippingpoint, and the exit code each maps to.

Every error a user can cause or meet carries a one-line message naming the problem and a
``hint`` naming the fix; the CLI prints ``error: <message> (<hint>)`` and exits with
``exit_code``. Tracebacks are shown only with ``--debug``.

    TippingPointError                 exit 1  base class
    ├── UsageError                    exit 2  the invocation or an input file is wrong
    │   ├── UnknownBackendError               no backend registered under that name
    │   ├── UnknownModelError                 no suite model of that name
    │   ├── ModelFileError                    model file missing or not readable
    │   ├── InvalidShapeError                 input shape missing, dynamic or wrong
    │   │   └── FixedBatchError               the model's fixed batch cannot run this batch size
    │   ├── InvalidOptionError                a backend or scenario option is invalid
    │   ├── SuiteFileError                    a suite TOML file is invalid
    │   ├── ReportError                       a report is invalid, tampered, or of another version
    │   ├── ProfileError                      a cost profile file is invalid (negative price, ...)
    │   ├── UnknownProfileError               no cost profile of that kind and name
    │   ├── CostInputError                    the reports lack a figure the cost calculation needs
    │   └── OutputDirError                    the output directory cannot be written
    └── RuntimeFailure                exit 1  something failed while running
        ├── RuntimeNotInstalledError          the backend's runtime package is missing
        ├── ModelLoadError                    the runtime could not load the model (corrupt file)
        └── InferenceError                    an inference call raised
"""

from __future__ import annotations


class TippingPointError(Exception):
    """Base class: a message naming the problem and a hint naming the fix."""

    exit_code: int = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The message and hint as one line, for the CLI."""
        text = self.message if not self.hint else f"{self.message} ({self.hint})"
        return " ".join(text.split())


class UsageError(TippingPointError):
    """The invocation or an input file is wrong; fixable by changing the command."""

    exit_code = 2


class UnknownBackendError(UsageError):
    """No backend is registered under the requested name."""


class UnknownModelError(UsageError):
    """No suite model has the requested name."""


class ModelFileError(UsageError):
    """A model file is missing, unreadable, or fails its recorded sha256."""


class InvalidShapeError(UsageError):
    """An input shape is missing for a dynamic dimension, or does not match the model."""


class FixedBatchError(InvalidShapeError):
    """The model has a fixed batch (of 1) and the runtime cannot run the requested batch size."""


FIXED_BATCH_HINT = "re-export the model with a dynamic batch dimension, or use --batch-sizes 1"
"""The fix named by every :class:`FixedBatchError`."""


class InvalidOptionError(UsageError):
    """A backend or scenario option is unknown or has an invalid value."""


class OptionValueError(ValueError):
    """Raised inside an option validator: the problem, and in ``fix`` the fix; option parsing
    turns it into an :class:`InvalidOptionError` with that fix (in place of the list of valid
    option names, which does not help with a bad value)."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix


class SuiteFileError(UsageError):
    """A suite TOML file cannot be parsed or validated."""


class ReportError(UsageError):
    """A report JSON file is invalid, tampered with, or of an unsupported schema version."""


class ProfileError(UsageError):
    """A cost profile file cannot be parsed or validated (missing field, negative price, ...)."""


class UnknownProfileError(UsageError):
    """No cost profile of the requested kind has the requested name."""


class CostInputError(UsageError):
    """The reports and profiles lack a figure the cost calculation needs."""


class OutputDirError(UsageError):
    """The output directory cannot be created or written."""


class RuntimeFailure(TippingPointError):
    """Something failed while running a benchmark."""

    exit_code = 1


class RuntimeNotInstalledError(RuntimeFailure):
    """The runtime package a backend needs is not installed."""


class ModelLoadError(RuntimeFailure):
    """The runtime could not load the model file (corrupt or unsupported)."""


class InferenceError(RuntimeFailure):
    """An inference call raised."""

"""Errors a user can act on: the CLI prints them as one line and exits nonzero."""


class UserError(ValueError):
    """Bad input from the user (file, column, option, model directory)."""


class NotFittedError(RuntimeError):
    """An estimator was used before ``fit`` (or ``load``)."""

"""UserError: what a user asked for cannot be done (a bad flag or config value, a run directory
that holds no run, a family without what was asked of it). The user's to fix, not a bug.

It is raised where such a mistake is found; the `tinygrad-pt` command (cli.py) prints its message
in one line and exits with status 2, while every other exception keeps its traceback. It is a
ValueError, so callers that catch ValueError keep working. This module imports nothing, so any
floor may raise it.
"""

__all__ = ["UserError", "TrainingDiverged"]


class UserError(ValueError):
    """A mistake in what was asked, reported in the user's terms (no traceback on the CLI)."""


class TrainingDiverged(UserError):
    """A training metric became NaN or infinite: the run stopped, its last good checkpoint kept.
    Not a bug of the program: the settings (most often the learning rate) are the user's to
    change. The command exits with status 3 (README, "Run directories"), apart from the 2 of
    other user errors, so that a sweep can tell a diverged run from a mistyped one."""

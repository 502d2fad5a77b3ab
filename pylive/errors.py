"""Errors a user can act on: a one-line message and the exit code the CLI returns."""

from __future__ import annotations


class PyliveError(Exception):
    """Base class: the CLI prints ``str(error)`` on one line and exits with ``exit_code``."""

    exit_code = 1


class ConfigError(PyliveError):
    """The app's ``[tool.pylive]`` configuration is missing or invalid."""

    exit_code = 2


class UsageError(PyliveError):
    """The command was called with input it cannot use (bad JSON, unknown function...)."""

    exit_code = 2


class SynthError(PyliveError):
    """Synthesizing the app's stacks failed (user code error, missing Node.js...)."""

    exit_code = 3


class ServeError(PyliveError):
    """The local server could not start (port in use...)."""

    exit_code = 4

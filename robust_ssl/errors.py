"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""


class RobustSSLError(Exception):
    """Base class of every error caused by bad input rather than by a bug."""


class DataError(RobustSSLError):
    """Data that is missing, corrupt or inconsistent, or a split that cannot be drawn from it."""

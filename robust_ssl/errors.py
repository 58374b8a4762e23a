"""Errors a user can fix: the CLI prints them as one line and exits with status 2."""

import errno
import sys
from contextlib import contextmanager


class RobustSSLError(Exception):
    """Base class of every error caused by bad input rather than by a bug."""


class DataError(RobustSSLError):
    """Data that is missing, corrupt or inconsistent, or a split that cannot be drawn from it."""


@contextmanager
def exit_on_user_error():
    """Every command's one way out on bad input: `robust-ssl: error: <what to fix>` on stderr
    and exit status 2, no traceback."""
    try:
        yield
    except RobustSSLError as error:
        print(f"robust-ssl: error: {error}", file=sys.stderr)
        sys.exit(2)
    except OSError as error:  # a full disk where no atomic write was (logs): fixable too
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = f" writing '{error.filename}'" if error.filename else ""
        print(f"robust-ssl: error: no space left{where} ({error.strerror}): free space there or "
              "choose another RESULTS; the next run resumes the cell from its last checkpoint",
              file=sys.stderr)
        sys.exit(2)

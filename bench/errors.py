"""The one base of every user-facing error.

A `HarnessError`'s message names the problem and the fix in one line; every command-line face prints it
as `error: <message>` and exits with code 2, without touching results already on disk. Errors that mean
a bug (a broken invariant) are not HarnessErrors and keep their traceback.
"""

from __future__ import annotations


class HarnessError(Exception):
    """Bad input, missing or corrupt data, an impossible setting: the user can fix it."""


class ConfigError(HarnessError, ValueError):
    """A malformed setting: unknown key, wrong type, impossible value."""


class UsageError(HarnessError, ValueError):
    """Bad command-line input."""


class DataError(HarnessError):
    """A data file that is missing, corrupt, or cannot be fetched."""

"""The commands' own error; apart from ``common`` so that building the argument tree imports nothing heavy."""

from __future__ import annotations


class CommandError(Exception):
    """A command failed for a reason the user can fix; printed without a traceback."""

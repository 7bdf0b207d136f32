"""Errors that a user can fix.

Every error synthmob raises for bad input is a :class:`SynthmobError`: its message is one line that names
where the mistake is (file, field), the value found, and what would be valid. The command line prints that
line and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class SynthmobError(Exception):
    """A mistake in the input that the user can correct."""

    exit_code = 2


class ConfigError(SynthmobError):
    """A scenario file or an override is malformed or out of range."""

    def __init__(self, source: str, field: str | None, value: object, expected: str) -> None:
        self.source = source
        self.field = field
        self.value = value
        self.expected = expected
        where = source if field is None else f"{source}: {field}"
        shown = _show(value)
        super().__init__(f"{where}: {shown}; {expected}" if shown else f"{where}: {expected}")


class OutputError(SynthmobError):
    """The output folder cannot be used."""


def _show(value: object) -> str:
    if value is _MISSING:
        return ""
    text = repr(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return f"got {text}"


class _Missing:
    def __repr__(self) -> str:  # pragma: no cover - never shown
        return "<missing>"


_MISSING = _Missing()
MISSING = _MISSING

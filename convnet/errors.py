"""The one exception type for mistakes a user can make.

Anything the user wrote or gave us that is wrong (a description, a shape, a file, an argument,
missing data) raises `UserError`. The command line turns it into one line on stderr and exit
status 2; library callers can catch it. Anything else is a bug in convnet and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """A mistake in what the user gave us; `str(e)` is one clear line, `context` optional detail."""

    def __init__(self, message: str, context: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.context = context  # extra lines shown under the message (e.g. a caret display)

    def __str__(self) -> str:
        return self.message


class ParseError(UserError):
    """A description that doesn't parse; carries the text and the offending column for a caret."""

    def __init__(self, message: str, text: str, pos: int, length: int = 1) -> None:
        self.text = text
        self.pos = pos
        self.length = max(1, length)
        super().__init__(message, context=self._caret())

    def _caret(self) -> str:
        # Show the line that holds the error, with ^^^ under the offending token.
        line_start = self.text.rfind("\n", 0, self.pos) + 1
        line_end = self.text.find("\n", self.pos)
        line = self.text[line_start : len(self.text) if line_end < 0 else line_end]
        column = self.pos - line_start
        carets = min(self.length, max(1, len(line) - column), self.WINDOW)
        # a long line is cut to a window around the error, marked with … at the cuts
        start = max(0, column - self.WINDOW)
        end = min(len(line), column + carets + self.WINDOW)
        shown = ("…" if start else "") + line[start:end] + ("…" if end < len(line) else "")
        column = column - start + (1 if start else 0)
        return f"    {shown}\n    {' ' * column}{'^' * carets}"

    WINDOW = 60  # characters shown on each side of the error in a long line


def first_line(failure: BaseException) -> str:
    """The first non-blank line of an exception from a library (its own words, without the
    pages of detail some add), or its type's name when it says nothing."""
    lines = [line.strip() for line in str(failure).splitlines() if line.strip()]
    return lines[0] if lines else type(failure).__name__


class GeometryError(UserError):
    """A layer whose sizes don't fit its input (the lecture's "stride 3 does not fit").
    `korean` holds the same message in Korean, for `inspect --lang ko`."""

    def __init__(self, message: str, korean: str | None = None) -> None:
        super().__init__(message)
        self.korean = korean or message

"""Errors that carry their advice apart from their message."""
from __future__ import annotations


class HintedError(Exception):
    """`message` says what went wrong, `hint` what to do about it in the CLI's terms ("give --data …"); str() is
    both. Another front end (the app's Train tab) keeps the message and gives its own advice, no text parsing."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(f"{message}; {hint}" if hint else message)
        self.message, self.hint = message, hint

    def __reduce__(self):            # pickles (a ZeroGPU call's process boundary) with both parts
        return type(self), (self.message, self.hint)

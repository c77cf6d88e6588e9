"""Errors a user can cause and fix. The CLI prints them as one line; everything else is a bug."""


class ScratchLMError(Exception):
    """Bad input, a missing file, an impossible setting: the message says what to change."""

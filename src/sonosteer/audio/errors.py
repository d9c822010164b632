"""Exceptions of the audio layer: bad input files get an actionable message, never a traceback."""

from __future__ import annotations


class AudioInputError(ValueError):
    """The input cannot be analysed (missing, empty, corrupt, truncated, not audio, silent, too short).

    The message names the file and says what to do; nothing is written for such input.
    """


class BackendUnavailable(RuntimeError):
    """An optional neural back-end (Demucs, Beat This!) is not installed or its weights are missing."""

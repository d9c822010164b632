"""Engine errors the server and the CLI show as they are: each names what is wrong and how to fix it."""

from __future__ import annotations


class EngineError(RuntimeError):
    """Base of every engine error whose message is meant for a person."""


class WeightsMissingError(EngineError):
    """Model weights are not on disk and could not be downloaded.

    `missing` holds one plain line per missing part (what, which files, how to get them); the
    message joins them, so one error names everything that is missing at once.
    """

    def __init__(self, missing: list[str]):
        self.missing = list(missing)
        super().__init__("model weights missing:\n" + "\n".join(f"- {line}" for line in self.missing))


class WeightsCorruptError(EngineError):
    """A weights file exists but cannot be read (truncated download, wrong format)."""


class SaeMismatchError(EngineError):
    """An SAE checkpoint does not fit the UNet block it is meant for (wrong width or layout)."""


class GpuOutOfMemoryError(EngineError):
    """The GPU ran out of memory while the engine was loading or warming up; what it held is freed."""


def is_out_of_memory(exc: BaseException | None) -> bool:
    """Whether `exc`, or an exception it was raised from (a compile error around it, say), is the GPU running
    out of memory: torch's OutOfMemoryError, or a CUDA library's "out of memory" error."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower():
            return True
        exc = exc.__cause__ or exc.__context__
    return False

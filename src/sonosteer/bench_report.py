"""Benchmarks print a table and append it to BENCHMARKS.md with machine, method and date."""

from __future__ import annotations

import datetime as _dt
import os
import platform
from pathlib import Path
from typing import Sequence


def machine_description() -> str:
    """One line naming the CPU count, OS and (when present) the CUDA device."""
    parts = [f"{os.cpu_count()} CPU cores", platform.machine(), f"Python {platform.python_version()}"]
    try:
        import torch  # noqa: PLC0415 - optional, only for the GPU name

        parts.append(f"torch {torch.__version__}")
        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return ", ".join(parts)


def format_table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats are shown with 3 significant decimals."""

    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def append_benchmark(
    title: str,
    method: str,
    header: Sequence[str],
    rows: Sequence[Sequence[object]],
    path: Path | str = "BENCHMARKS.md",
    machine: str | None = None,
) -> str:
    """Print the table and append a dated section to `path`; returns the section text."""
    today = _dt.date.today().isoformat()
    section = (
        f"\n## {title} ({today})\n\n"
        f"- machine: {machine or machine_description()}\n"
        f"- method: {method}\n\n"
        f"{format_table(header, rows)}\n"
    )
    print(section)
    path = Path(path)
    if not path.exists():
        path.write_text("# Benchmarks\n\nEvery measurement, with machine, method and date. Newest last.\n")
    with path.open("a") as f:
        f.write(section)
    return section

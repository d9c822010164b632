"""Where a frame's host time goes: the CPU-side calls (torch ops, CUDA runtime API) of one step, per step.

The frame as a caller waits for it carries 0.09-0.34 ms over its GPU graph, depending on the machine's
host; this names the calls that take it (a CUDA event's synchronize is the wait for the GPU).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable

import torch

OUTSIDE = "(Python and everything outside a profiled call)"


def host_breakdown(step: Callable[[], object], steps: int = 50, top: int = 15) -> tuple[float, list[list[object]]]:
    """Wall time per step (us, profiled) and rows (name, us per step, calls per step) of the `top`
    CPU-side calls by self time, then OUTSIDE: the wall time no profiled call accounts for."""
    if steps < 1 or top < 1:
        raise ValueError(f"steps and top must be at least 1, got {steps} and {top}")
    from torch.autograd import DeviceType  # noqa: PLC0415
    from torch.profiler import ProfilerActivity, profile, record_function  # noqa: PLC0415

    cuda = torch.cuda.is_available()
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    for _ in range(3):
        step()
    with profile(activities=activities) as prof:
        for _ in range(steps):
            with record_function("host_profile_step"):
                step()
    markers = [e for e in prof.events() if e.device_type == DeviceType.CPU and e.name == "host_profile_step"]
    wall_us = sum(e.cpu_time_total for e in markers) / steps
    outside_us = sum(e.self_cpu_time_total for e in markers) / steps
    # The calls nested in the steps (the profiler's tree, as its self times): other threads' work is not the wait.
    per_name: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
    pending = [child for marker in markers for child in marker.cpu_children]
    while pending:
        event = pending.pop()
        pending.extend(event.cpu_children)
        entry = per_name[event.name]
        entry[0] += event.self_cpu_time_total / steps
        entry[1] += 1 / steps
    rows = [[name[:90], us, round(n, 2)] for name, (us, n) in sorted(per_name.items(), key=lambda kv: -kv[1][0])[:top]]
    rows.append([OUTSIDE, outside_us, ""])
    return wall_us, rows

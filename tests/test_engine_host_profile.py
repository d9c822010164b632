"""`host_profile.host_breakdown`: the host's calls per step, counted and timed, partitioning the step's wall time."""

import time

import pytest
import torch

from sonosteer.engine.host_profile import OUTSIDE, host_breakdown


def _step_with_known_calls(a: torch.Tensor) -> None:
    for _ in range(3):
        torch.add(a, a)
    torch.mul(a, a)
    time.sleep(0.002)  # no torch call: it belongs to OUTSIDE


def test_each_call_is_counted_per_step_and_the_rows_partition_the_wall_time():
    a = torch.ones(16)
    wall_us, rows = host_breakdown(lambda: _step_with_known_calls(a), steps=10, top=1000)
    by_name = {name: (us, calls) for name, us, calls in rows}
    assert by_name["aten::add"][1] == 3 and by_name["aten::mul"][1] == 1
    assert all(us >= 0 for us, _ in by_name.values())
    assert by_name[OUTSIDE][0] >= 2000  # the sleep, in no torch call
    assert sum(us for us, _ in by_name.values()) == pytest.approx(wall_us, rel=1e-6)  # self times partition it
    assert 2000 <= wall_us < 2000 + 50_000


def test_top_limits_the_calls_listed_and_what_is_outside_stays():
    a = torch.ones(16)
    _, rows = host_breakdown(lambda: _step_with_known_calls(a), steps=5, top=1)
    assert len(rows) == 2 and rows[1][0] == OUTSIDE
    with pytest.raises(ValueError, match="at least 1"):
        host_breakdown(lambda: None, steps=0)

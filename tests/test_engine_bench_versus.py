"""The --versus benchmark's statistics and option handling (the end-to-end runs are in test_engine_cli.py)."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from sonosteer.engine.bench_options import add_arguments
from sonosteer.engine.bench_versus import median_interval, variant_args


def test_median_interval_covers_the_true_median_and_narrows_with_more_samples():
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.3, 1.0, 50), rng.normal(0.3, 1.0, 2000)
    (low_few, high_few), (low_many, high_many) = median_interval(few), median_interval(many)
    assert low_few < np.median(few) < high_few and low_many < 0.3 < high_many
    assert high_many - low_many < (high_few - low_few) / 3  # the width shrinks as 1/sqrt(n): sqrt(40) ~ 6.3


def test_variant_options_go_on_top_of_the_others_and_leave_them_alone():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--frames", "7", "--inductor", "a=1", "--versus", "--no-fp8-convs --inductor b=2"])
    variant = variant_args(args)
    assert not variant.fp8_convs and variant.frames == 7 and variant.inductor == [("a", 1), ("b", 2)]
    assert args.fp8_convs and args.inductor == [("a", 1)]  # A keeps its own options
    assert variant.versus is None and args.versus == "--no-fp8-convs --inductor b=2"


@pytest.mark.parametrize("options", ["--tiny", "--size 256", "--real-weights"])
def test_variant_options_may_not_change_the_frame(options):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    with pytest.raises(SystemExit):
        variant_args(parser.parse_args(["--versus", options]))

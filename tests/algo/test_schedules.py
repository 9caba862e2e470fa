"""Curriculum schedules (spec 3.1, 3.4): endpoints and monotonicity."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spear.algo.schedules import SCHEDULES, cosine_decay, cosine_warmup, schedule


@pytest.mark.parametrize(
    ("step", "expected"),
    [(0, 1.0), (50, (1 + math.cos(math.pi / 4)) / 2), (100, 0.5), (200, 0.0), (201, 0.0), (10_000, 0.0)],
)
def test_cosine_decay_endpoints(step, expected):
    assert cosine_decay(step, 200) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(("step", "expected"), [(0, 0.0), (150, 0.5), (300, 1.0), (301, 1.0)])
def test_cosine_warmup_endpoints(step, expected):
    assert cosine_warmup(step, 300) == pytest.approx(expected, abs=1e-12)


def test_named_schedules():
    assert schedule("linear", 50, 200, direction="decay") == pytest.approx(0.75)
    assert schedule("linear", 50, 200, direction="warmup") == pytest.approx(0.25)
    assert schedule("linear", 400, 200, direction="decay") == 0.0
    assert schedule("constant", 999, 200) == 1.0
    assert schedule("none", 0, 200, direction="warmup") == 0.0
    assert schedule("cosine", 100, 200, direction="warmup") == pytest.approx(0.5)


@given(a=st.floats(0, 500), b=st.floats(0, 500), total=st.floats(1, 400))
def test_monotone_and_bounded(a, b, total):
    lo, hi = min(a, b), max(a, b)
    for name in ("cosine", "linear"):
        d_lo, d_hi = schedule(name, lo, total), schedule(name, hi, total)
        w_lo, w_hi = (
            schedule(name, lo, total, direction="warmup"),
            schedule(name, hi, total, direction="warmup"),
        )
        assert 0.0 <= d_hi <= d_lo + 1e-12 <= 1.0 + 1e-12
        assert 0.0 <= w_lo <= w_hi + 1e-12 <= 1.0 + 1e-12


@given(step=st.floats(0, 500), total=st.floats(1, 400))
def test_cosine_decay_and_warmup_are_complementary(step, total):
    assert cosine_decay(step, total) + cosine_warmup(step, total) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("cosine", -1, 200), "step must be"),
        (("cosine", 1, 0), "total must be"),
        (("cosine", float("nan"), 10), "step must be"),
        (("exp", 1, 10), "schedule must be one of"),
    ],
)
def test_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        schedule(*args)
    with pytest.raises(ValueError, match="direction must be one of"):
        schedule("cosine", 1, 10, direction="up")


def test_every_schedule_has_both_directions():
    assert all(set(v) == {"decay", "warmup"} for v in SCHEDULES.values())

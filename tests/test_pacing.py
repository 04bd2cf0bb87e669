"""The add pacer: CyTube's burst-then-rate limit, with the clock passed in."""

from hypothesis import given
from hypothesis import strategies as st

from kryten_playlist_lib.domain.pacing import AddPacer


def test_a_burst_goes_at_once_then_one_add_per_interval() -> None:
    pacer = AddPacer(burst=10, rate_per_second=2, now=0.0)
    for _ in range(10):
        assert pacer.wait_seconds(0.0) == 0
        pacer.spend(0.0)
    assert pacer.wait_seconds(0.0) == 0.5
    assert pacer.wait_seconds(0.5) == 0
    pacer.spend(0.5)
    assert pacer.wait_seconds(0.75) == 0.25


@given(st.integers(min_value=1, max_value=20), st.floats(min_value=0.5, max_value=50), st.integers(1, 200))
def test_following_the_pacer_never_beats_the_limit(burst: int, rate: float, adds: int) -> None:
    pacer, now, times = AddPacer(burst, rate, 0.0), 0.0, []
    for _ in range(adds):
        now += pacer.wait_seconds(now)
        pacer.spend(now)
        times.append(now)
    # In any window [t0, t1], at most burst + rate * (t1 - t0) adds go out.
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= burst + rate * (times[j] - start) + 1e-6

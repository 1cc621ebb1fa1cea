"""The brokers' memory of executions already taken: bounded by the read window, and never
letting a known execution become a second fill."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradefleet_plugins.brokers.seen_ids import SeenIds


def test_a_long_lived_memory_keeps_only_what_a_later_read_can_return() -> None:
    """A year of a busy bot: 200,000 executions a minute apart, the read window ten minutes."""
    seen: SeenIds[str] = SeenIds()
    largest = 0
    for i in range(200_000):
        stamp = i * 60_000
        seen.add(f"t{i}", stamp)
        seen.forget_before(stamp - 10 * 60_000)
        largest = max(largest, len(seen))
    assert largest <= 2048
    # What is in the window is still known by its id.
    assert all(seen.taken(f"t{i}", None) for i in range(199_990, 200_000))


def test_a_forgotten_execution_returned_again_is_not_taken_twice() -> None:
    """A venue that ignored the read's start returns an old execution: below the floor it
    counts as taken, id or not."""
    seen: SeenIds[str] = SeenIds()
    for i in range(5_000):
        seen.add(f"t{i}", i)
    seen.forget_before(4_000)
    assert seen.taken("t10", 10)
    assert seen.taken("never-seen-but-old", 3_999)
    assert not seen.taken("new", 4_000)


def test_an_execution_without_a_time_is_never_forgotten() -> None:
    seen: SeenIds[str] = SeenIds()
    seen.add("timeless", None)
    for i in range(5_000):
        seen.add(f"t{i}", i)
        seen.forget_before(i)
    assert seen.taken("timeless", None)


def test_the_floor_never_goes_back() -> None:
    seen: SeenIds[str] = SeenIds()
    seen.forget_before(100)
    seen.forget_before(50)
    assert seen.taken("old", 99)
    assert not seen.taken("new", 100)


_steps = st.lists(
    st.one_of(
        st.tuples(st.just("add"), st.integers(0, 300), st.integers(0, 10_000)),
        st.tuples(st.just("floor"), st.just(0), st.integers(-100, 10_000)),
    ),
    max_size=3_000,
)


@given(_steps)
def test_an_execution_taken_once_is_taken_for_ever(steps: list[tuple[str, int, int]]) -> None:
    """Whatever the order of executions and floors, an execution added once is taken when it
    comes back with its own time (the broker's only defence against a second fill)."""
    seen: SeenIds[int] = SeenIds()
    added: dict[int, int] = {}
    for kind, key, stamp in steps:
        if kind == "add":
            if key in added:
                continue  # a broker adds an execution once: the next time it is taken
            seen.add(key, stamp)
            added[key] = stamp
        else:
            seen.forget_before(stamp)
        assert all(seen.taken(k, s) for k, s in added.items())

"""The id generator's fast encoding (cached high digits) must spell exactly ``prefix + base36(n)``."""

from __future__ import annotations

import pytest

from mmkit.orders.ids import ClientIdGenerator, Sequencer, base36

_LOW = 36**6  # the generator re-encodes only the low six digits while the high ones stay the same


class _Steps:
    """A clock that returns the given values in turn (the sequencer keeps them increasing)."""

    def __init__(self, values: list[int]) -> None:
        self._values = iter(values)

    def __call__(self) -> int:
        return next(self._values)


@pytest.mark.parametrize(
    "values",
    [
        [1, 35, 36, 1295, 1296],  # small counters (fake clocks in tests) take the plain path
        [_LOW - 2, _LOW - 1, _LOW, _LOW + 1],  # the switch to the cached path
        [5 * _LOW - 1, 5 * _LOW, 5 * _LOW + 36, 6 * _LOW + 1295],  # the high part changes between ids
        [1_723_161_253_000_000_000 + k * 7_919 for k in range(300)],  # a real epoch in ns, low digits with zeros
        [2**62, 2**62 + _LOW, 2**63],
        # consecutive values (a backtest tick's orders): the cached head up to the last pair, across pairs
        [1_723_161_253_000_000_000 - 1300 + k for k in range(2_700)],
        [3 * _LOW - 1296, 3 * _LOW - 1, 3 * _LOW, 3 * _LOW + 1295, 3 * _LOW + 1296],  # window and pair edges
        [2 * _LOW + 5, 2 * _LOW + 6, 3 * _LOW + 7, 3 * _LOW + 8],  # the same low pairs in a new window
    ],
)
def test_ids_spell_prefix_plus_base36(values: list[int]) -> None:
    gen = ClientIdGenerator("ab", Sequencer(_Steps(values)))
    assert [gen.next_id() for _ in values] == ["ab" + base36(v) for v in values]


def test_ids_decode_back_to_the_sequence_and_increase() -> None:
    seq = Sequencer(_Steps([1_723_161_253_000_000_000 + k * 1_000_003 for k in range(5_000)]))
    gen = ClientIdGenerator("", seq)
    numbers = [int(gen.next_id(), 36) for _ in range(5_000)]
    assert numbers == sorted(set(numbers))
    assert numbers[0] == 1_723_161_253_000_000_000


def test_an_absurd_clock_fails_on_every_id_not_only_the_first() -> None:
    # The cached window is kept only for ids that pass the length check; a too-long one raises each time.
    too_far = 36**16  # base36 is 17 digits: with a 2-character prefix, 19 > 18
    gen = ClientIdGenerator("ab", Sequencer(_Steps([too_far, too_far + 1, too_far + 2])))
    for _ in range(3):
        with pytest.raises(RuntimeError, match="exceeds 18 characters"):
            gen.next_id()


def _next_id_lines() -> list[int]:
    """The line numbers of ``ClientIdGenerator.next_id``'s body (where another thread may cut in)."""
    import inspect

    source, first = inspect.getsourcelines(ClientIdGenerator.next_id)
    return [first + i for i, text in enumerate(source) if i > 0 and text.strip() and not text.strip().startswith("#")]


def _expected_id(prefix: str, value: int) -> str:
    """The id of ``value``, encoded the long way (what every path of next_id must give)."""
    from mmkit.orders.ids import _LOW, _PAIRS, base36

    high, low = divmod(value, _LOW)
    mid, last = divmod(low, 1296)
    return prefix + base36(high) + _PAIRS[mid // 1296] + _PAIRS[mid % 1296] + _PAIRS[last]


@pytest.mark.parametrize("line", _next_id_lines())
@pytest.mark.parametrize("crossing", [False, True], ids=["same window", "next window"])
def test_a_second_thread_cutting_in_at_any_line_never_gets_or_causes_a_wrong_id(line: int, crossing: bool) -> None:
    """Thread A stops at ``line`` of next_id (if its path passes it) while thread B makes an id; then both
    go on, and two more ids follow. Every id must be its value's encoding (so all are distinct): a cache
    stored in two steps, cut between them, paired one value's digits with another's head and issued an id
    twice."""
    import sys
    import threading

    from mmkit.orders.ids import _LOW

    start = 1_765_000_000_000_000_000 // _LOW * _LOW + 5 * 1296
    jump = _LOW if crossing else 0
    # Increasing (the sequencer would bump a smaller value); A's and B's ids fall in different digit pairs.
    values = [start, start + jump + 1296 + 5, start + jump + 2 * 1296 + 3, start + jump + 2 * 1296 + 5,
              start + jump + 2 * 1296 + 9]
    script = iter(values)
    generator = ClientIdGenerator("mm", Sequencer(lambda: next(script)))
    issued = [generator.next_id()]  # the window is set up
    code = ClientIdGenerator.next_id.__code__
    b_may_run, b_done = threading.Event(), threading.Event()

    def pause_a_at_line(frame, event, arg):  # type: ignore[no-untyped-def]
        if event == "call":
            return pause_a_at_line if frame.f_code is code else None
        if event == "line" and frame.f_lineno == line and not b_may_run.is_set():
            b_may_run.set()
            assert b_done.wait(10), "thread B did not finish"
        return pause_a_at_line

    def thread_a() -> None:
        sys.settrace(pause_a_at_line)
        try:
            issued.append(generator.next_id())
        finally:
            sys.settrace(None)
            b_may_run.set()  # A's path did not pass ``line``: B makes its id after A's

    def thread_b() -> None:
        assert b_may_run.wait(10), "thread A never reached the line"
        issued.append(generator.next_id())
        b_done.set()

    a, b = threading.Thread(target=thread_a), threading.Thread(target=thread_b)
    b.start()
    a.start()
    a.join(15)
    b.join(15)
    issued += [generator.next_id(), generator.next_id()]
    assert sorted(issued) == sorted(_expected_id("mm", v) for v in values), issued

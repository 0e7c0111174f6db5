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

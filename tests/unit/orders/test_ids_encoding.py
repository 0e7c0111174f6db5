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

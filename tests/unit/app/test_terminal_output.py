"""Issue 13, item 6: terminal output is drawn in place with rich on a terminal, plain anywhere else."""

from __future__ import annotations

import io

from mmkit.app.status_cmd import print_status
from mmkit.app.terminal import StatusDisplay
from mmkit.backtest.progress import ProgressBar

BLOCK = ("┌ Layered on sim:BTC-PYUSD [quoting]\n│ reference 60,000.00 (confidence 1.00)\n"
         "└ PnL total 0.00 = realized 0.00 + unrealized 0.00 - fees 0.00 | fills 0")

STATUS = {
    "instance": "layered-example", "source": "store", "store": "sqlite:///x.sqlite", "session": "s1",
    "running": False, "heartbeat_ns": 1_723_161_253_000_000_000, "kill_switch": None,
    "positions": {"sim:BTC-PYUSD": "0.01"},
    "pnl": {"sim:BTC-PYUSD": {"position": "0.01", "realized": "1.5", "unrealized": "0", "fees": "0.1",
                              "mark": "60000"}},
    "open_orders": [{"client_id": "la1", "side": "BUY", "price": "59990", "qty": "0.01", "filled_qty": "0",
                     "state": "OPEN"}],
}


def test_progress_redirected_is_plain_periodic_lines_without_carriage_returns() -> None:
    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream, min_interval_s=0.0)
    for done in (10, 50, 90):
        bar.update(done)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines == [line for line in lines if line.startswith("backtest [")]
    assert lines[-1].startswith("backtest [100.0 %]") and len(lines) == 4


def test_progress_redirected_defaults_to_a_line_every_few_seconds() -> None:
    stream = io.StringIO()
    bar = ProgressBar(1000, stream=stream)
    for done in range(0, 1000, 10):
        bar.update(done)  # a fast run: no time passes between updates
    bar.close()
    assert len(stream.getvalue().splitlines()) <= 2  # the first line and 100 %


def test_progress_on_a_terminal_is_a_rich_bar() -> None:
    stream = io.StringIO()
    bar = ProgressBar(100, stream=stream, terminal=True, min_interval_s=0.0)
    bar.update(50)
    bar.close()
    text = stream.getvalue()
    assert "backtest" in text and "100%" in text and "━" in text


def test_status_display_redraws_in_place_on_a_terminal_and_appends_elsewhere() -> None:
    plain = io.StringIO()
    display = StatusDisplay(plain)
    display.show(BLOCK)
    display.show(BLOCK)
    display.close()
    assert plain.getvalue() == BLOCK + "\n" + BLOCK + "\n"
    tty = io.StringIO()
    live = StatusDisplay(tty, terminal=True)
    live.show(BLOCK)
    live.show(BLOCK.replace("fills 0", "fills 3"))
    live.close()
    text = tty.getvalue()
    assert "Layered on sim:BTC-PYUSD [quoting]" in text and "fills 3" in text
    assert "\x1b[" in text  # cursor movement: the panel is redrawn, not appended


def test_mmkit_status_is_rich_tables_on_a_terminal_and_plain_text_otherwise() -> None:
    plain = io.StringIO()
    print_status(STATUS, plain)
    assert plain.getvalue().startswith("instance     layered-example (from store sqlite:///x.sqlite)")
    rich = io.StringIO()
    print_status(STATUS, rich, terminal=True)
    text = rich.getvalue()
    for expected in ("layered-example", "open orders (1)", "la1", "59990", "realized", "1.5"):
        assert expected in text
    assert "┃" in text or "│" in text  # drawn as tables

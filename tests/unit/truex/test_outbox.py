"""The simulator's outbox when the callback thread sends its own answers (``sending_after``).

connectors/truex/sim/outbox.py: one FIFO; whoever holds the flush lock sends
from its head. These tests fail if a message can be stranded (the holder not
looking again after releasing), reordered, or sent while the exchange's lock
is still held.
"""

from __future__ import annotations

import threading

import quickfix as fix

from connectors.truex.sim.outbox import Outbox

A = fix.SessionID("FIXT.1.1", "EX", "A")


def _message(text: str) -> fix.Message:
    message = fix.Message()
    message.setField(11, text)
    return message


def test_the_callback_thread_sends_its_answers_itself_after_the_block() -> None:
    """Messages queued inside ``sending_after`` neither wake the sender nor leave inside the block; the
    queuing thread sends them itself when the block ends.

    The sender thread is not running while the answers are queued: with it running, a sender still busy
    with an earlier message may take the answers over (allowed, see the module docstring), which made
    ``sent_by_caller`` a matter of scheduling on a loaded machine. Here the only sender is the caller.
    """
    sent: list[tuple[str, str]] = []
    outbox = Outbox("t", lambda sid, msg: sent.append((threading.current_thread().name, msg.getField(11))) or True)
    outbox.put(A, _message("before"))  # queued outside a block: it wakes the sender
    assert outbox._wake.is_set()
    outbox.flush()  # what the sender thread would do on that wake
    outbox._wake.clear()
    in_block: list[object] = []

    def callback() -> None:
        with outbox.sending_after():
            outbox.put(A, _message("answer1"))
            outbox.put(A, _message("answer2"))
            in_block.append((outbox._wake.is_set(), [text for _, text in sent]))

    worker = threading.Thread(target=callback, name="quickfix-callback")
    worker.start()
    worker.join()
    assert in_block == [(False, ["before"])]  # no wake, nothing sent inside the block
    assert sent == [("MainThread", "before"), ("quickfix-callback", "answer1"), ("quickfix-callback", "answer2")]
    assert outbox.sent == 3 and outbox.sent_by_caller == 2
    outbox.start()
    assert outbox.stop(timeout_s=10)


def test_a_message_queued_while_another_thread_sends_is_sent_by_that_thread() -> None:
    """No sender thread at all: only the flush lock's holder can send, so a stranded message would stay."""
    gate = threading.Event()
    in_send = threading.Event()
    sent: list[str] = []

    def send(sid: fix.SessionID, message: fix.Message) -> bool:
        text = message.getField(11)
        if text == "first":
            in_send.set()
            assert gate.wait(10)  # hold the flush lock while the other thread queues
        sent.append(text)
        return True

    outbox = Outbox("t", send)  # never started
    holder = threading.Thread(target=lambda: (outbox.put(A, _message("first")), outbox.flush()))
    holder.start()
    assert in_send.wait(10)
    with outbox.sending_after():
        outbox.put(A, _message("second"))
    assert sent == []  # the flush lock was taken: this thread left "second" to the holder
    gate.set()
    holder.join(10)
    assert sent == ["first", "second"]


def test_a_block_ending_under_the_exchange_lock_leaves_the_sending_to_the_sender_thread() -> None:
    lock = threading.RLock()
    senders: list[str] = []
    sent = threading.Event()

    def send(sid: fix.SessionID, message: fix.Message) -> bool:
        senders.append(threading.current_thread().name)
        sent.set()
        return True

    outbox = Outbox("t", send, never_send_under=lock)
    outbox.start()
    with lock, outbox.sending_after():  # wrong nesting: the block ends with the lock still held
        outbox.put(A, _message("x"))
    assert sent.wait(10)
    assert senders == ["t-sender"]
    assert outbox.stop(timeout_s=10)

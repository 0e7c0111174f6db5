"""Talk to a running instance's control socket (what ``mmkit pause`` and friends use)."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from mmkit.app.control.paths import socket_address


class NoInstanceError(Exception):
    """Nothing answers on the control socket: the instance is not running (or the path is wrong)."""


class NoAnswerError(Exception):
    """The instance accepted the command but did not answer in time (it may still complete)."""


def send_command(
    path: Path, action: str, *, params: dict[str, Any] | None = None, source: str = "", timeout_s: float = 60.0
) -> dict[str, Any]:
    """Send one request and return the instance's answer (a dict with ok, action, message, data, id)."""
    request = {"action": action, "params": params or {}, "source": source}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        try:
            with socket_address(path) as address:
                sock.connect(address)
        except (FileNotFoundError, ConnectionRefusedError, NotADirectoryError) as exc:
            raise NoInstanceError(f"nothing answers on {path} ({exc.strerror})") from exc
        except PermissionError as exc:
            raise NoInstanceError(f"cannot reach {path}: permission denied (run as the instance's user)") from exc
        sock.sendall((json.dumps(request) + "\n").encode("utf-8"))
        buffer = b""
        try:
            while not buffer.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buffer += chunk
        except TimeoutError as exc:
            raise NoAnswerError(f"no answer from {path} within {timeout_s:.0f} s") from exc
    if not buffer.strip():
        raise NoAnswerError(f"the instance closed {path} without answering (it may be stopping)")
    answer = json.loads(buffer)
    if not isinstance(answer, dict):
        raise NoAnswerError(f"unexpected answer on {path}: {buffer[:200]!r}")
    return answer

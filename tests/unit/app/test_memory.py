"""mmkit.app.memory: the start-up trim really gives freed heap pages back (glibc), and says when it cannot."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmkit.app.memory import resident_kb

_PROBE = """
import ctypes, sys
from mmkit.app.memory import resident_kb, trim_heap
libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
# 40 MB of small C blocks on the main heap (below the mmap threshold), touched, then freed except the last:
# the freed pages stay resident until malloc_trim, since the live block pins the top of the heap.
blocks = [libc.malloc(4096) for _ in range(10_000)]
for b in blocks:
    ctypes.memset(b, 1, 4096)
for b in blocks[:-1]:
    libc.free(b)
before = resident_kb()
released = trim_heap()
after = resident_kb()
print(before, after, released)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim and /proc are Linux-only")
def test_trim_returns_freed_heap_pages_to_the_os() -> None:
    done = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True)
    before, after, released = done.stdout.split()
    assert released == "True"
    assert int(before) - int(after) > 20_000  # kB: most of the 40 MB freed went back


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux-only")
def test_resident_size_follows_memory_actually_touched() -> None:
    before = resident_kb()
    assert before is not None and before > 1000
    block = bytearray(64 * 1024 * 1024)  # zero-filled by calloc: resident only once written
    block[:: 4096] = b"\x01" * len(block[:: 4096])
    during = resident_kb()
    assert during is not None and during - before > 50_000  # kB
    del block

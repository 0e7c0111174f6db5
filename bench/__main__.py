"""Run every benchmark in bench/ (or those named on the command line) and print their figures."""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def main(argv: list[str]) -> int:
    names = argv or sorted(m.name for m in pkgutil.iter_modules(bench.__path__) if m.name.startswith("bench_"))
    failed = 0
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name} ==", flush=True)
        began = time.perf_counter()
        try:
            module.main()
        except Exception as exc:  # keep going: one broken bench must not hide the others' figures
            failed += 1
            print(f"   FAILED: {exc!r}", flush=True)
        print(f"   ({time.perf_counter() - began:.1f} s)\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

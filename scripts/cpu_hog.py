"""Keep N CPU cores busy until killed (SIGTERM/SIGINT), to run tests under load: `make stress`.

python scripts/cpu_hog.py [N]      # N busy processes (default: one per core)
"""

# ruff: noqa: T201 - a console tool
from __future__ import annotations

import multiprocessing
import os
import signal
import sys
from types import FrameType


def spin() -> None:
    """A busy loop that ends with its process."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    value = 0
    while True:
        value = (value * 1103515245 + 12345) & 0xFFFFFFFF


def main(argv: list[str]) -> int:
    try:
        count = int(argv[1]) if len(argv) > 1 else (os.cpu_count() or 1)
    except ValueError:
        print(f"usage: {argv[0]} [number of busy processes], not {argv[1]!r}", file=sys.stderr)
        return 2
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=spin, name=f"cpu-hog-{n}", daemon=True) for n in range(count)]
    for worker in workers:
        worker.start()
    print(
        f"cpu_hog: {count} busy processes ({', '.join(str(w.pid) for w in workers)}) until killed", flush=True
    )

    def stop(signum: int, _frame: FrameType | None) -> None:
        for worker in workers:
            worker.kill()
        for worker in workers:
            worker.join(5)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv))

"""python -m soak [--seconds N] [--seed N] [--quick] [--keep]

SOAK_SECONDS and SOAK_SEED set the defaults; SOAK_POSTGRES_URL the PostgreSQL server a database is made
on (SQLite with a note when unset or not answering). Exit 0: no violation; 1: violations (printed);
2: a service did not start."""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys

from soak.run import Options, main

QUICK_SECONDS = 30.0


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(prog="python -m soak", description="the fault-and-abuse soak")
    seed = os.environ.get("SOAK_SEED") or str(random.randrange(10**6))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS") or "180"))
    parser.add_argument("--seed", type=int, default=int(seed))
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_SECONDS:g}s of trading, one fault of each kind"
    )
    parser.add_argument("--max-rss-mib", type=int, default=800)
    parser.add_argument(
        "--keep", action="store_true", help="keep the work directory (logs, store) after a pass"
    )
    args = parser.parse_args(argv)
    return Options(
        seconds=QUICK_SECONDS if args.quick else args.seconds,
        seed=args.seed,
        quick=args.quick,
        postgres_url=os.environ.get("SOAK_POSTGRES_URL") or None,
        max_rss_mib=args.max_rss_mib,
        keep=args.keep,
    )


if __name__ == "__main__":
    # The soak's own proxies log what they see (a venue refusing while it restarts) beside its progress.
    logging.basicConfig(level=logging.WARNING, format="        %(name)s: %(message)s")
    sys.exit(main(parse(sys.argv[1:])))

"""Run a test suite K times under a CPU hog and count what fails: flakes show up under load.

    python scripts/stress.py [--runs 3] [--hogs 2] [--tls] [pytest arguments]   # default: tests/integration

Each run writes a JUnit report in var/stress/; the summary names every test that failed and in how many runs,
with the first line of its error. Exit 0 only if every run passed.
"""

# ruff: noqa: T201, S603 - a console tool that runs pytest and the hog, our own commands
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parents[1]


def failures(report: Path) -> dict[str, str]:
    """test id -> the first line of its failure or error, from one JUnit report."""
    found: dict[str, str] = {}
    if not report.exists():
        return {"(no report)": "pytest wrote no report: it did not run to the end"}
    for case in ElementTree.parse(report).getroot().iter("testcase"):  # noqa: S314 - our own pytest's file
        for outcome in ("failure", "error"):
            element = case.find(outcome)
            if element is not None:
                name = f"{case.get('classname')}::{case.get('name')}"
                message = (element.get("message") or element.text or "").strip().splitlines()
                found[name] = f"{outcome}: {message[0][:200] if message else '?'}"
    return found


def run_once(number: int, tests: list[str], tls: bool, out: Path) -> tuple[int, dict[str, str], float]:
    report = out / f"run-{number}.xml"
    report.unlink(missing_ok=True)
    env = {**os.environ, "FIXADAPTER_TEST_FIX_TLS": "1" if tls else "0"}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}", *tests]
    started = time.monotonic()
    with open(out / f"run-{number}.log", "w") as log:
        code = subprocess.run(
            command, check=False, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        ).returncode
    return code, failures(report), time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--hogs", type=int, default=os.cpu_count() or 1, help="busy processes beside the tests"
    )
    parser.add_argument(
        "--tls", action="store_true", help="every FIX session over TLS (FIXADAPTER_TEST_FIX_TLS=1)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "stress")
    args, tests = parser.parse_known_args()
    tests = tests or ["tests/integration"]
    args.out.mkdir(parents=True, exist_ok=True)
    hog = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "cpu_hog.py"), str(args.hogs)])
    failed_runs = 0
    seen: Counter[str] = Counter()
    reasons: dict[str, str] = {}
    try:
        for number in range(1, args.runs + 1):
            code, failed, seconds = run_once(number, tests, args.tls, args.out)
            failed_runs += code != 0
            seen.update(failed.keys())
            for name, reason in failed.items():
                reasons.setdefault(name, reason)
            verdict = "passed" if code == 0 else f"FAILED (pytest exit {code})"
            print(
                f"run {number}/{args.runs}: {verdict}, {len(failed)} failing tests, {seconds:.0f} s",
                flush=True,
            )
    finally:
        hog.terminate()
        hog.wait(10)
    print(
        f"\n{args.runs} runs under {args.hogs} busy processes: "
        f"{args.runs - failed_runs} passed, {failed_runs} failed"
    )
    for name, count in seen.most_common():
        print(f"  {count}x {name}\n      {reasons[name]}")
    print(f"logs and JUnit reports: {args.out}")
    return 0 if failed_runs == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

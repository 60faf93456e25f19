"""Install quickfix built from its sdist with fixadapter's patch (patches/quickfix-<version>.patch).

    python scripts/build_quickfix.py                  # into this interpreter (make install runs it)
    python scripts/build_quickfix.py --wheel-dir DIR  # only put the wheel in DIR (the Dockerfile)

The version is the pin in pyproject.toml (or --version); the wheel's version carries the patch's digest
as a local label (1.16.0+fixadapter.<digest>), which still satisfies the pin and tells the adapter at run
time that the patch is in (connectors/fix/engine_build.py). Compiling takes minutes, so the wheel is kept in
$FIXADAPTER_WHEEL_CACHE (default ~/.cache/fixadapter/wheels): the next install takes seconds.
"""

# ruff: noqa: T201, S603 - a console tool running pip and patch, our own commands
from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABEL = "fixadapter"
HEARTBEAT_SECONDS = 30.0


class BuildError(Exception):
    """Why the patched quickfix could not be built, and what to do."""


def pinned_version(pyproject: Path) -> str:
    found = re.search(r'"quickfix==([0-9][0-9A-Za-z.]*)"', pyproject.read_text())
    if found is None:
        raise BuildError(f'{pyproject} pins no quickfix version (expected a dependency "quickfix==X.Y.Z")')
    return found.group(1)


def patched_version(version: str, patch: bytes) -> str:
    """The wheel's version: the pin with the patch's digest as a local label."""
    return f"{version}+{LABEL}.{hashlib.sha256(patch).hexdigest()[:12]}"


def wheel_cache() -> Path:
    configured = os.environ.get("FIXADAPTER_WHEEL_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fixadapter" / "wheels"


def cached_wheel(cache: Path, version: str) -> Path | None:
    """A wheel of `version` in the cache that this interpreter can install."""
    from packaging.tags import sys_tags
    from packaging.utils import parse_wheel_filename

    supported = set(sys_tags())
    for wheel in sorted(cache.glob("quickfix-*.whl")):
        _name, found, _build, tags = parse_wheel_filename(wheel.name)
        if str(found) == version and tags & supported:
            return wheel
    return None


def installed_version() -> str | None:
    try:
        return metadata.version("quickfix")
    except metadata.PackageNotFoundError:
        return None


def run(command: list[str], what: str, log: Path | None = None) -> None:
    """Run `command`, printing a line every HEARTBEAT_SECONDS while it runs (compiling takes minutes)."""
    started = time.monotonic()
    with open(log if log is not None else os.devnull, "w") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(HEARTBEAT_SECONDS):
                print(f"   ... {what}: {time.monotonic() - started:.0f} s", flush=True)

        threading.Thread(target=beat, daemon=True).start()
        code = process.wait()
        done.set()
    if code != 0:
        where = f"; its output is in {log}" if log is not None else ""
        raise BuildError(f"{what} failed (exit {code}){where}")


def build(version: str, patch: Path, target: str, cache: Path) -> Path:
    """Download the sdist, patch it, compile the wheel into the cache; returns the wheel."""
    cache.mkdir(parents=True, exist_ok=True)
    pip = [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory(prefix="quickfix-build-") as scratch:
        work = Path(scratch)
        print(f">> downloading the quickfix {version} sdist", flush=True)
        run(
            [*pip, "download", f"quickfix=={version}", "--no-deps", "--no-binary", ":all:", "-d", str(work)],
            "downloading the sdist",
            work / "download.log",
        )
        (sdist,) = work.glob("quickfix-*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(work, filter="data")
        source = work / f"quickfix-{version}"
        print(f">> applying {patch.relative_to(ROOT)}", flush=True)
        run(
            ["patch", "-p1", "--batch", "--forward", "-d", str(source), "-i", str(patch)],
            "patching",
            work / "patch.log",
        )
        setup_cfg = source / "setup.cfg"
        text, count = re.subn(r"(?m)^version = .*$", f"version = {target}", setup_cfg.read_text())
        if count != 1:
            raise BuildError(f"the quickfix {version} sdist's setup.cfg has no single version line to label")
        setup_cfg.write_text(text)
        log = cache / f"quickfix-{target}.build.log"
        print(f">> compiling quickfix {target} (about 5 to 10 minutes; output in {log})", flush=True)
        run(
            [*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(work / "out"), str(source)],
            "compiling",
            log,
        )
        (built,) = (work / "out").glob("quickfix-*.whl")
        final = cache / built.name
        shutil.copy(built, cache / f".{built.name}.part")
        os.replace(cache / f".{built.name}.part", final)  # never a half-written wheel in the cache
    return final


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel-dir", type=Path, help="put the wheel here instead of installing it")
    parser.add_argument("--version", help="the quickfix version (default: the pin in pyproject.toml)")
    args = parser.parse_args()
    try:
        version = args.version or pinned_version(ROOT / "pyproject.toml")
        patch = ROOT / "patches" / f"quickfix-{version}.patch"
        if not patch.exists():
            raise BuildError(f"no patch for the pinned quickfix {version}: {patch} (port the last one)")
        target = patched_version(version, patch.read_bytes())
        if args.wheel_dir is None and installed_version() == target:
            print(f">> quickfix {target} (patched) is installed")
            return 0
        cache = wheel_cache()
        wheel = cached_wheel(cache, target) if cache.is_dir() else None
        if wheel is None:
            wheel = build(version, patch, target, cache)
        else:
            print(f">> quickfix {target}: the wheel built before ({wheel})", flush=True)
        if args.wheel_dir is not None:
            args.wheel_dir.mkdir(parents=True, exist_ok=True)
            shutil.copy(wheel, args.wheel_dir / wheel.name)
            print(f">> {args.wheel_dir / wheel.name}")
            return 0
        run(
            [sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall", "--quiet", str(wheel)],
            "installing the wheel",
        )
        print(f">> quickfix {target} (patched) installed")
        return 0
    except BuildError as exc:
        print(f"build_quickfix: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())

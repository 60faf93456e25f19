"""The adapter tells the quickfix it runs on: fixadapter's patched build (scripts/build_quickfix.py labels
its version) or a stock one, which it warns about."""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path

import pytest

from fixadapter.connectors.fix.engine_build import is_patched, quickfix_version

ROOT = Path(__file__).resolve().parents[2]


def build_script():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("build_quickfix", ROOT / "scripts" / "build_quickfix.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("build_quickfix", module)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("version", "patched"),
    [
        ("1.16.0+fixadapter.3f2a9c01d4e5", True),
        ("1.16.0", False),
        ("1.16.0+other.1", False),
        ("1.16.0+fixadapterx.1", False),
        (None, False),
    ],
)
def test_only_a_version_labelled_by_the_build_script_counts_as_patched(version: str | None, patched: bool):
    assert is_patched(version) is patched


def test_the_build_labels_the_pinned_version_with_the_digest_of_the_patch_it_applies():
    script = build_script()
    pinned = script.pinned_version(ROOT / "pyproject.toml")
    patch = (ROOT / "patches" / f"quickfix-{pinned}.patch").read_bytes()
    version = script.patched_version(pinned, patch)
    assert version == f"{pinned}+fixadapter.{hashlib.sha256(patch).hexdigest()[:12]}"
    assert is_patched(version)


def test_the_installed_quickfix_is_the_patched_build_of_the_current_patch():
    script = build_script()
    pinned = script.pinned_version(ROOT / "pyproject.toml")
    patch = (ROOT / "patches" / f"quickfix-{pinned}.patch").read_bytes()
    assert quickfix_version() == script.patched_version(pinned, patch), (
        "the installed quickfix is not built from the current patch: run make install"
    )

"""Whether the quickfix in use carries fixadapter's patch (patches/quickfix-<version>.patch).

Stock quickfix closes a connection's socket before its engine thread has polled it for the last time, and
closes it again when the initiator stops; the patch closes it once, when that thread is done. The build
marks itself with a local version label (scripts/build_quickfix.py): 1.16.0+fixadapter.<digest>.
"""

from __future__ import annotations

from importlib import metadata

LABEL = "fixadapter"


def quickfix_version() -> str | None:
    try:
        return metadata.version("quickfix")
    except metadata.PackageNotFoundError:
        return None


def is_patched(version: str | None) -> bool:
    """True for a version that build_quickfix.py labelled (`1.16.0+fixadapter.3f2a...`)."""
    if version is None or "+" not in version:
        return False
    return version.split("+", 1)[1].split(".", 1)[0] == LABEL

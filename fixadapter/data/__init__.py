"""Files the package needs at run time, shipped inside it (package data): the cTrader FIX 4.4 dictionary
and the QuickFIX session template. The checkout's `spec/FIX44-CTRADER.xml` and `sessions.cfg` are links
to these, so a relative path in a config finds them in the working directory, the checkout, or here."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

DICTIONARY = "FIX44-CTRADER.xml"
SESSIONS_TEMPLATE = "sessions.cfg"


def packaged(name: str) -> Path | None:
    """The installed file of that name in this package (a real file: QuickFIX opens it by path), else None."""
    found = resources.files(__name__).joinpath(name)
    if isinstance(found, Path) and found.is_file():
        return found
    return None

"""cTrader FIX 4.4 connector (QuickFIX). Only this package and fixadapter.sim import quickfix.

The quickfix binding's module init sets SIGINT to SIG_DFL at the C level (sigaction), behind Python's
back: Python still believes its handler is installed, so after the first `import quickfix` a Ctrl-C kills
the process outright, with no logout and no cleanup (asyncio.run's handler, installed before a lazily
imported connector, never runs). So this package imports quickfix first and puts Python's handler back.
"""

from __future__ import annotations

import signal
import threading

import quickfix  # noqa: F401 - imported here first, for the SIGINT repair below


def restore_sigint() -> bool:
    """Install again the SIGINT handler Python believes is installed; False off the main thread (where
    signal.signal cannot be called: the next import on the main thread, or the caller, repairs it)."""
    if threading.current_thread() is not threading.main_thread():
        return False
    handler = signal.getsignal(signal.SIGINT)
    if handler is None:  # set outside Python: not ours to touch
        return False
    signal.signal(signal.SIGINT, handler)
    return True


restore_sigint()

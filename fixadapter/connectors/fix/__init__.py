"""cTrader FIX 4.4 connector (QuickFIX). Only this package and fixadapter.sim import quickfix."""

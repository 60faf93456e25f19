"""fixadapter: an execution adapter from trading desks to cTrader brokers (FIX 4.4, Open API fallback)."""

__version__ = "0.1.0"

"""The simulator's cTrader Open API front: a TLS port over the same venues as the FIX ports (server.py),
its requests (requests.py, trading.py), the venue's records as Open API messages (convert.py), rate limits
and control-port gates (limits.py), the margin rule (margin.py) and the token registry it shares with the
OAuth endpoint (tokens.py)."""

"""TLS to the broker's FIX ports, run by the adapter itself.

The PyPI `quickfix` build has no SSL, so each TLS session gets a forwarder: QuickFIX connects to it on
loopback and it opens the TLS connection to the broker (system trust store or a pinned CA, hostname
verification, TLS 1.2+, SNI). The simulator uses the same relay to serve its ports over TLS.
"""

"""`fixadapter check`: connect to each configured account as the daemon would and say, one line per step,
what works and what is wrong (network, TLS, credentials, CompID, QUOTE/TRADE port mix-up, Open API
application, token and account), without placing an order."""

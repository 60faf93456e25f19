"""The cTrader Open API connector: transport (TLS, framing, one writer, heartbeat, clientMsgId answers),
rate shaping and the outgoing queue; the OAuth flow and the encrypted token store (`oauth`, `redirect`,
`login`, `tokens`); in-band auth, reconnect and the mapping onto the order model come next."""

"""The cTrader Open API connector: transport (TLS, framing, one writer, heartbeat, clientMsgId answers),
rate shaping and the outgoing queue; auth, reconnect and the mapping onto the order model come next."""

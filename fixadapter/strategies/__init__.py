"""Strategies that trade through the daemon's queue with nothing but a StrategyClient.

Each is an `async def run(client: StrategyClient, ...)`, so the daemon can load it from
`daemon.strategies` (`entry: fixadapter.strategies.sample:run`) as well as the demo can call it.
"""

"""Faithful simulators of the cTrader venue, used by the demo and the test suites."""

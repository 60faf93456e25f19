"""Venue-neutral order model: every connector (FIX, Open API) maps onto these types."""

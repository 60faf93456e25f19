"""Connectors map one venue protocol onto the normalized model."""

"""Data for the schema migration tests."""

"""Alembic runs this for every command on this history; fixadapter.store.migrations hands it a connection."""

from fixadapter.store.migrations import run_env

run_env()

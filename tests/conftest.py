"""Shared fixtures: service URLs (skip with a reason locally, fail in CI) and a clean environment."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest
import redis
from sqlalchemy import create_engine, make_url
from sqlalchemy.schema import CreateSchema, DropSchema

DEFAULT_PORTS = {"redis": 6379, "rediss": 6379}


def _reachable(url: str) -> bool:
    parsed = urlparse(url.replace("+psycopg", ""))
    port = parsed.port or DEFAULT_PORTS.get(parsed.scheme, 5432)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


def service_url(variable: str) -> str:
    """The URL in `variable`; skipped when unset, a failure when CI requires services."""
    url = os.environ.get(variable)
    required = os.environ.get("FIXADAPTER_TEST_REQUIRE_SERVICES") == "1"
    if not url:
        if required:
            pytest.fail(f"{variable} must be set when FIXADAPTER_TEST_REQUIRE_SERVICES=1")
        pytest.skip(f"{variable} not set")
    if not _reachable(url):
        message = f"service at {variable} is not reachable"
        if required:
            pytest.fail(message)
        pytest.skip(message)
    return url


@pytest.fixture
def postgres_url() -> str:
    return service_url("FIXADAPTER_TEST_POSTGRES_URL")


@pytest.fixture
def pg_schema(postgres_url: str) -> Iterator[str]:
    """A schema of its own on the machine's PostgreSQL (dropped afterwards), so tests never share tables."""
    name = f"fixadapter_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(CreateSchema(name))
    try:
        yield name
    finally:
        with admin.begin() as conn:
            conn.execute(DropSchema(name, cascade=True))
        admin.dispose()


@pytest.fixture
def pg_schema_url(postgres_url: str, pg_schema: str) -> str:
    """The PostgreSQL URL with `pg_schema` as its search path."""
    url = make_url(postgres_url).update_query_dict({"options": f"-csearch_path={pg_schema}"})
    return url.render_as_string(hide_password=False)


@pytest.fixture
def redis_url() -> str:
    return service_url("FIXADAPTER_TEST_REDIS_URL")


@pytest.fixture
def queue_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of its own on the machine's Redis (its keys deleted afterwards), so tests never share
    streams."""
    prefix = f"fxtest-{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()

"""Shared fixtures: service URLs (skip with a reason locally, fail in CI) and a clean environment."""

from __future__ import annotations

import os
import socket
from urllib.parse import urlparse

import pytest


def _reachable(url: str) -> bool:
    parsed = urlparse(url.replace("+psycopg", ""))
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), timeout=2):
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

"""`logging.json: true`: one JSON object per line with time, level, logger, message and the extra fields,
secrets masked as in the plain log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from fixadapter.config import build_config
from fixadapter.logs import configure_logging

ACCOUNT = {"host": "127.0.0.1", "sender_comp_id": "demo.x.1", "username": "1", "password": "pw"}


@pytest.fixture
def json_lines() -> Iterator[Any]:
    """The daemon's stderr handler as `logging.json: true` configures it, writing to a buffer."""
    root = logging.getLogger()
    before = (list(root.handlers), root.level)
    configure_logging("INFO", json_lines=True)
    (ours,) = [h for h in root.handlers if getattr(h, "_fixadapter", False)]
    assert isinstance(ours, logging.StreamHandler)
    buffer = io.StringIO()
    ours.setStream(buffer)

    def lines() -> list[dict[str, Any]]:
        return [json.loads(line) for line in buffer.getvalue().splitlines()]

    yield lines
    root.removeHandler(ours)
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def test_each_record_is_one_json_object_with_time_level_logger_message_and_extras(
    json_lines: Any,
) -> None:
    logging.getLogger("fixadapter.fix").warning(
        "TRADE: logon refused (%d of %d)", 1, 5, extra={"session": "TRADE", "refusals": 1}
    )

    (line,) = json_lines()
    assert set(line) == {"time", "level", "logger", "message", "session", "refusals"}
    assert line["level"] == "WARNING"
    assert line["logger"] == "fixadapter.fix"
    assert line["message"] == "TRADE: logon refused (1 of 5)"
    assert line["session"] == "TRADE" and line["refusals"] == 1
    assert line["time"].endswith("Z") and line["time"][10] == "T"


def test_secrets_are_masked_in_the_message_the_extra_fields_and_the_exception(json_lines: Any) -> None:
    log = logging.getLogger("fixadapter.test")
    log.info("logon 35=A|553=1|554=hunter2|", extra={"password": "hunter2", "raw": "8=FIX.4.4|554=hunter2|"})
    try:
        raise ValueError("password=hunter2")
    except ValueError:
        log.exception(
            "failed with token: abc123", extra={"settings": {"access_token": "abc123", "port": 5212}}
        )

    first, second = json_lines()
    everything = json.dumps([first, second])
    assert "hunter2" not in everything and "abc123" not in everything
    assert first["message"] == "logon 35=A|553=1|554=******|"
    assert first["password"] == "******"  # noqa: S105 - the mask
    assert first["raw"] == "8=FIX.4.4|554=******|"
    assert second["settings"] == {"access_token": "******", "port": 5212}
    assert (
        second["exception"].startswith("Traceback") and "ValueError: password=******" in second["exception"]
    )


def test_json_logs_are_off_by_default_and_set_by_the_config_or_the_environment() -> None:
    assert build_config({"account": ACCOUNT}, environ={}).logging.json_lines is False
    assert build_config({"account": ACCOUNT, "logging": {"json": True}}, environ={}).logging.json_lines
    environ = {"FIXADAPTER_LOGGING__JSON": "true"}
    assert build_config({"account": ACCOUNT}, environ=environ).logging.json_lines

"""Specification of secret masking: FIX Password (554) and tokens never reach a log."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from fixadapter.logs import MaskingFilter, mask_secrets

SECRET = "passw0rd!"  # noqa: S105 - a test value
Captured = tuple[logging.Logger, io.StringIO]
LOGON = "8=FIX.4.4|35=A|49=live.theBroker.12345|56=CSERVER|553=12345|554=passw0rd!|10=131|"


@pytest.mark.parametrize("separator", ["\x01", "|"], ids=["soh", "pipe"])
def test_mask_secrets_masks_fix_password_with_either_separator(separator: str) -> None:
    raw = LOGON.replace("|", separator)

    masked = mask_secrets(raw)

    assert SECRET not in masked
    assert f"{separator}554=******{separator}10=131{separator}" in masked
    assert f"{separator}553=12345{separator}" in masked


def test_mask_secrets_masks_fix_password_at_the_start_of_the_text() -> None:
    assert mask_secrets("554=hunter2") == "554=******"


def test_mask_secrets_masks_an_empty_fix_password_without_touching_the_next_field() -> None:
    assert mask_secrets("553=1|554=|10=0|") == "553=1|554=******|10=0|"


@pytest.mark.parametrize("field", ["1554=keep", "5540=keep", "15540=keep"])
def test_mask_secrets_leaves_other_tags_containing_554_alone(field: str) -> None:
    raw = f"35=A|{field}|10=0|"

    assert mask_secrets(raw) == raw


def test_mask_secrets_leaves_a_value_of_554_alone() -> None:
    raw = "35=8|38=554|14=554|"

    assert mask_secrets(raw) == raw


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("password: hunter2", "password: ******"),
        ("Password=hunter2 user=1", "Password=******"),  # unquoted: masked to the end of the line
        ("access_token=eyJhbGciOi.x.y&next=1", "access_token=******"),
        ('{"refresh_token": "r-123", "expires": 3600}', '{"refresh_token": "******", "expires": 3600}'),
        ("clientSecret: abc, client_secret=def", "clientSecret: ******, client_secret=******"),
        ("token=abc", "token=******"),
    ],
)
def test_mask_secrets_masks_key_value_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


def test_mask_secrets_leaves_text_without_secrets_unchanged() -> None:
    text = "order ord-1 filled 10000 @ 1.0674, 2 tokens left, 554 units"

    assert mask_secrets(text) == text


@pytest.fixture
def captured() -> Iterator[Captured]:
    """A logger whose only handler writes to a string buffer through the masking filter."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("fixadapter.tests.masking")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_masking_filter_masks_a_secret_in_the_message(captured: Captured) -> None:
    logger, stream = captured

    logger.info("sent %s", LOGON)

    assert SECRET not in stream.getvalue()
    assert "554=******" in stream.getvalue()


def test_masking_filter_masks_a_secret_passed_as_an_argument(captured: Captured) -> None:
    logger, stream = captured

    logger.warning("logon as %s with password=%s", "12345", SECRET)

    assert stream.getvalue() == "logon as 12345 with password=******\n"


def test_masking_filter_masks_fix_password_built_from_arguments(captured: Captured) -> None:
    logger, stream = captured

    logger.debug("%s=%s", 554, SECRET)

    assert stream.getvalue() == "554=******\n"


def test_masking_filter_keeps_a_message_without_secrets(captured: Captured) -> None:
    logger, stream = captured

    logger.info("%d%% of %s filled", 40, "ord-1")

    assert stream.getvalue() == "40% of ord-1 filled\n"


@pytest.mark.parametrize(
    "text",
    [
        repr("553=12345\x01554=hunter2!\x0110=001\x01"),  # a raw message logged with %r
        str({"password": "hunter2!"}),  # a dict repr
        "password: 'hunter2!'",
        'password="hunter2! with spaces"',
        "8=FIX.4.4|554=hunter2! with spaces|10=001|",
    ],
)
def test_mask_secrets_masks_quoted_escaped_and_spaced_secrets(text: str) -> None:
    assert "hunter2" not in mask_secrets(text)


def test_masking_filter_masks_a_secret_in_a_traceback(captured: Captured) -> None:
    logger, stream = captured

    try:
        raise ValueError(f"logon refused 554={SECRET}|")
    except ValueError:
        logger.exception("boom")

    assert SECRET not in stream.getvalue()
    assert "ValueError" in stream.getvalue()


def test_mask_secrets_masks_a_fix_password_containing_the_log_separator() -> None:
    assert mask_secrets("35=A\x01554=ab|cd!ef\x0110=001\x01") == "35=A\x01554=******\x0110=001\x01"


def test_mask_secrets_masks_an_unquoted_password_with_spaces() -> None:
    assert "horse" not in mask_secrets("password=correct horse battery")


def test_a_token_in_free_text_masks_only_its_own_fix_field() -> None:
    raw = "8=FIX.4.4\x0135=j\x0158=invalid token: abc123\x01379=ORD-1\x0110=123\x01"
    masked = mask_secrets(raw)
    assert "abc123" not in masked
    assert masked.endswith("\x01379=ORD-1\x0110=123\x01")

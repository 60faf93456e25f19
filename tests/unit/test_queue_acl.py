"""`fixadapter queue acl` prints one Redis ACL user per strategy: write only its own command stream, read
only its own events and the positions; no account password is needed to run it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from fixadapter.cli import main
from fixadapter.queue.acl import strategy_url


def config_file(tmp_path: Path, queue: dict[str, object]) -> Path:
    path = tmp_path / "config.yaml"
    account = {"host": "127.0.0.1", "sender_comp_id": "demo", "username": "1"}  # no password: not needed
    path.write_text(yaml.safe_dump({"account": account, "daemon": {"queue": queue}}))
    return path


def test_the_rules_give_each_strategy_only_its_own_streams(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, {"kind": "redis", "prefix": "fx", "strategies": ["momo", "mean-rev"]})
    assert main(["queue", "acl", "--config", str(path)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if not line.startswith("#")]
    commands = "+xadd +xread +xinfo|stream +ping +hello +client|setname +select"
    assert lines == [
        f"ACL SETUSER fx.momo reset on %W~fx:commands:momo %R~fx:events:momo %R~fx:positions {commands}",
        f"ACL SETUSER fx.mean-rev reset on %W~fx:commands:mean-rev %R~fx:events:mean-rev %R~fx:positions "
        f"{commands}",
    ]


def test_a_memory_queue_has_no_users_to_make_and_says_what_to_set(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = config_file(tmp_path, {"kind": "memory"})
    assert main(["queue", "acl", "--config", str(path)]) == 1
    assert "set daemon.queue.kind: redis and daemon.queue.strategies" in capsys.readouterr().err


def test_a_strategy_url_carries_its_user_and_password_and_none_of_the_daemons() -> None:
    url = strategy_url(
        "redis://admin:s3cret@redis.example:6380/2?password=x&ssl_cert_reqs=none", "fx.momo", "p/w"
    )
    assert url == "redis://fx.momo:p%2Fw@redis.example:6380/2?ssl_cert_reqs=none"

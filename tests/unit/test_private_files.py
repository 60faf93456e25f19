"""What the adapter writes only its user can read: databases and the FIX record 0600, the directories it
creates 0700, whatever the umask; and a password written in the YAML file is warned about, never shown."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from fixadapter.compliance.capture import MessageRecorder
from fixadapter.compliance.files import MESSAGES, LogFiles
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.spill import Spill, write_rejected
from fixadapter.config import ComplianceConfig, build_config, load_config
from fixadapter.metrics import Metrics
from fixadapter.sim.records import open_database
from fixadapter.store.repository import OrderStore, make_engine

from .conftest import make_order

ACCOUNT = {"host": "127.0.0.1", "sender_comp_id": "demo.test.1", "username": "1"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture(autouse=True)
def permissive_umask() -> Iterator[None]:
    """The usual 022 umask, under which a plain open() makes a world-readable 0644 file."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def test_the_sqlite_store_its_wal_files_and_the_directories_it_makes_are_private(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'new' / 'var' / 'adapter.db'}"
    store = OrderStore(url)
    store.create_schema()
    store.insert_order(make_order())
    files = sorted((tmp_path / "new" / "var").iterdir())
    try:
        assert {p.name for p in files} >= {"adapter.db", "adapter.db-wal", "adapter.db-shm"}
        assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}
        assert mode(tmp_path / "new") == 0o700 and mode(tmp_path / "new" / "var") == 0o700
    finally:
        store.close()


def test_the_compliance_database_beside_the_store_is_private(tmp_path: Path):
    config = build_config(
        {"account": {**ACCOUNT, "password": "x"}, "store": {"url": f"sqlite:///{tmp_path}/a.db"}}, {}
    )
    engine = make_engine(config.compliance_store_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        assert mode(tmp_path / "a-fix.db") == 0o600 and mode(tmp_path / "a-fix.db-wal") == 0o600
    finally:
        engine.dispose()


def test_a_store_file_an_older_version_left_world_readable_is_narrowed_when_opened(tmp_path: Path):
    old = tmp_path / "adapter.db"
    old.touch(mode=0o644)
    os.chmod(old, 0o644)
    store = OrderStore(f"sqlite:///{old}")
    store.create_schema()
    store.close()
    assert mode(old) == 0o600


def test_the_compliance_log_files_their_gzip_and_directory_are_private(tmp_path: Path):
    directory = tmp_path / "fixlog"
    files = LogFiles(directory)
    files.write("TRADE", MESSAGES, datetime(2026, 11, 20, 9, tzinfo=UTC), "8=FIX.4.4\x019=5\x0135=0\x01")
    files.close()
    (written,) = directory.glob("*.log")
    assert mode(directory) == 0o700 and mode(written) == 0o600
    assert files.compress_older_than(2, today=date(2026, 11, 30)) == 1
    (compressed,) = directory.glob("*.log.gz")
    assert mode(compressed) == 0o600


def test_the_compliance_spill_files_and_rejects_are_private(tmp_path: Path):
    directory = tmp_path / "fixlog" / "spill"
    spill = Spill(directory)
    record = FixRecord(
        time=datetime(2026, 11, 20, 9, tzinfo=UTC),
        session="TRADE",
        direction=Direction.OUTBOUND,
        msg_type="0",
        raw="x",
    )
    spill.append([record])
    spill.close()
    write_rejected(directory, "a record", "too long")
    assert mode(tmp_path / "fixlog") == 0o700 and mode(directory) == 0o700
    assert {p.name: mode(p) for p in directory.iterdir()} == {p.name: 0o600 for p in directory.iterdir()}


def test_the_compliance_directory_and_its_lock_are_private(tmp_path: Path):
    directory = tmp_path / "fixlog"
    recorder = MessageRecorder(ComplianceConfig(database=False), directory, None, Metrics())
    recorder.start()
    recorder.close()
    assert mode(directory) == 0o700 and mode(directory / ".lock") == 0o600


def test_the_simulators_state_file_is_private(tmp_path: Path):
    connection = open_database(tmp_path / "venue.sqlite")
    connection.close()
    states = list(tmp_path.iterdir())
    assert states and {p.name: mode(p) for p in states} == {p.name: 0o600 for p in states}


def test_a_password_in_the_yaml_file_is_warned_about_naming_the_variable_and_never_shown(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "config.yaml"
    path.write_text(
        "account:\n  host: 127.0.0.1\n  sender_comp_id: demo.test.1\n  username: '1'\n"
        "  password: Sup3rSecret\n"
    )
    load_config(path, environ={})
    (warning,) = [r for r in caplog.records if r.name == "fixadapter.config"]
    assert warning.levelno == logging.WARNING
    assert "FIXADAPTER_ACCOUNT__PASSWORD" in warning.getMessage() and str(path) in warning.getMessage()
    assert "Sup3rSecret" not in caplog.text


def test_a_password_from_the_environment_only_gets_no_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    path = tmp_path / "config.yaml"
    path.write_text("account:\n  host: 127.0.0.1\n  sender_comp_id: demo.test.1\n  username: '1'\n")
    config = load_config(path, environ={"FIXADAPTER_ACCOUNT__PASSWORD": "from-env"})
    assert config.account().fix.password.get_secret_value() == "from-env"
    assert not [r for r in caplog.records if r.name == "fixadapter.config"]

"""`fixadapter log verify`: every chain intact (exit 0) or the first edited, deleted or swapped record named
(exit 1)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from fixadapter.cli import main
from fixadapter.compliance.records import Direction, FixRecord
from fixadapter.compliance.table import fix_messages
from fixadapter.compliance.writer import ComplianceWriter
from fixadapter.store.repository import make_engine

T0 = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)


def seeded(tmp_path: Path) -> tuple[str, Engine, list[int]]:
    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = make_engine(url)
    records = [
        FixRecord(
            time=T0 + timedelta(seconds=seq),
            session="TRADE",
            direction=Direction.OUTBOUND,
            msg_type="D",
            seq_num=seq,
            cl_ord_id=f"c{seq}",
            raw=f"8=FIX.4.4\x0135=D\x0134={seq}\x0111=c{seq}\x01",
        )
        for seq in range(1, 6)
    ]
    ComplianceWriter(engine).append_many(records)
    with engine.connect() as conn:
        ids = list(conn.execute(select(fix_messages.c.id).order_by(fix_messages.c.id)).scalars())
    return url, engine, ids


def edit(engine: Engine, ids: list[int]) -> int:
    with engine.begin() as conn:
        conn.execute(update(fix_messages).where(fix_messages.c.id == ids[2]).values(cl_ord_id="forged"))
    return ids[2]


def delete(engine: Engine, ids: list[int]) -> int:
    with engine.begin() as conn:
        conn.execute(fix_messages.delete().where(fix_messages.c.id == ids[2]))
    return ids[3]  # the record whose link to its predecessor is broken


def swap(engine: Engine, ids: list[int]) -> int:
    columns = [c.name for c in fix_messages.columns if c.name != "id"]
    with engine.begin() as conn:
        rows = [
            conn.execute(select(fix_messages).where(fix_messages.c.id == i)).one()._mapping for i in ids[1:3]
        ]
        for target, source in ((ids[1], rows[1]), (ids[2], rows[0])):
            values = {name: source[name] for name in columns}
            conn.execute(update(fix_messages).where(fix_messages.c.id == target).values(**values))
    return ids[1]


def test_log_verify_of_intact_chains_says_so_and_exits_0(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, engine, _ = seeded(tmp_path)
    engine.dispose()

    assert main(["log", "verify", "--store-url", url]) == 0

    out = capsys.readouterr().out
    assert "TRADE 2025-03-04: intact, 5 records" in out and "all 1 chain(s) intact" in out


@pytest.mark.parametrize(("tamper", "kind"), [(edit, "EDITED"), (delete, "DELETED"), (swap, "REORDERED")])
def test_log_verify_names_the_tampered_record_and_exits_1(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    tamper: Callable[[Engine, list[int]], int],
    kind: str,
) -> None:
    url, engine, ids = seeded(tmp_path)
    named = tamper(engine, ids)
    engine.dispose()

    assert main(["log", "verify", "--store-url", url, "--session", "TRADE", "--day", "2025-03-04"]) == 1

    captured = capsys.readouterr()
    assert f"{kind}: record id {named} (TRADE seq" in captured.out
    assert f"tampered: {kind}: record id {named}" in captured.err


def test_log_verify_without_a_message_table_explains_and_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    make_engine(url).dispose()
    (tmp_path / "empty.db").touch()

    assert main(["log", "verify", "--store-url", url]) == 1

    assert "no fix_messages table" in capsys.readouterr().err

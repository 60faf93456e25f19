"""`fixadapter demo --workdir DIR` (issue 16, item 3): the demo clears only a directory it made itself (it
writes a marker file in each one); a non-empty directory it did not make is refused, nothing in it deleted."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixadapter.cli import main
from fixadapter.demo import MARKER, prepare_workdir


@pytest.fixture(autouse=True)
def _no_log_handler(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("fixadapter.cli.configure_logging", lambda _level: None)


def test_demo_refuses_a_non_empty_directory_it_did_not_create_and_deletes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "thesis"
    (mine / "chapters").mkdir(parents=True)
    (mine / "draft.txt").write_text("years of work", encoding="utf-8")
    (mine / "chapters" / "1.txt").write_text("one", encoding="utf-8")

    code = main(["demo", "--workdir", str(mine)])

    assert code == 1
    assert capsys.readouterr().err == (
        f"fixadapter demo: --workdir {mine} is not empty and was not made by the demo (it has no "
        f"{MARKER} file): nothing in it was deleted; give a new or empty directory\n"
    )
    assert (mine / "draft.txt").read_text(encoding="utf-8") == "years of work"
    assert (mine / "chapters" / "1.txt").read_text(encoding="utf-8") == "one"
    assert not (mine / MARKER).exists()


def test_demo_refuses_a_file_given_as_its_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "notes.txt"
    target.write_text("keep", encoding="utf-8")

    assert main(["demo", "--workdir", str(target)]) == 1
    assert capsys.readouterr().err == (
        f"fixadapter demo: --workdir {target} is a file, not a directory; nothing was changed\n"
    )
    assert target.read_text(encoding="utf-8") == "keep"


def test_a_new_or_empty_directory_becomes_the_demos_and_is_cleared_at_its_next_run(tmp_path: Path) -> None:
    new = tmp_path / "var" / "demo"
    prepare_workdir(new)
    assert (new / MARKER).is_file() and [p.name for p in new.iterdir()] == [MARKER]
    assert new.stat().st_mode & 0o777 == 0o700

    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_workdir(empty)
    assert (empty / MARKER).is_file()

    (new / "fixadapter.db").write_bytes(b"last run")
    (new / "sim-tls").mkdir()
    (new / "sim-tls" / "ca.pem").write_text("x", encoding="utf-8")
    prepare_workdir(new)
    assert [p.name for p in new.iterdir()] == [MARKER]

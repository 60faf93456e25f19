"""The README's "Try it against the simulator" section runs as written (issue 16, item 1).

Its fenced blocks that start with `# terminal N` are parsed out of README.md: `export NAME=VALUE` lines set
that terminal's environment, every other line is a command, run as a subprocess in one temporary directory
(both terminals share it, as the README says). Two substitutions, and only these: `fixadapter` runs as
`python -m fixadapter` (this interpreter, this checkout), and terminal 1's `fixadapter simulate` gets
`--quote-port 0 --trade-port 0 --control-port 0 --openapi-port 0 --oauth-port 0` appended, so the test never
collides with a simulator already running; the config it writes carries the ports it bound, so terminal 2's
commands run unchanged. The README itself says so.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
from pathlib import Path

from fixadapter.sim.runner import READY_LINE

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Try it against the simulator"
FREE_PORTS = [
    f"--{name}-port=0" for name in ("quote", "trade", "control", "openapi", "oauth")
]  # as the README says: --quote-port 0 --trade-port 0 --control-port 0 --openapi-port 0 --oauth-port 0
READY_SECONDS = 60


def terminals() -> dict[str, tuple[dict[str, str], list[list[str]]]]:
    """Terminal name -> (its exported variables, its commands), in the README's order."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    found: dict[str, tuple[dict[str, str], list[list[str]]]] = {}
    for block in re.findall(r"^```[a-z]*\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL):
        lines = block.splitlines()
        if not lines or not lines[0].startswith("# terminal"):
            continue
        exports: dict[str, str] = {}
        commands: list[list[str]] = []
        for line in lines[1:]:
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            words = shlex.split(line)
            if words[0] == "export":
                name, _, value = words[1].partition("=")
                exports[name] = value
            else:
                commands.append(words)
        found[lines[0].removeprefix("# ").strip()] = (exports, commands)
    return found


def python_m(words: list[str]) -> list[str]:
    assert words[0] == "fixadapter", f"the README's commands are fixadapter commands: {words}"
    return [sys.executable, "-m", "fixadapter", *words[1:]]


def clean_environment(exports: dict[str, str]) -> dict[str, str]:
    """This shell's environment without anything of ours, plus the block's exports."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("FIXADAPTER_")}
    return {**base, **exports}


def test_the_readme_simulator_section_runs_literally_and_fills_an_order(tmp_path: Path):
    found = terminals()
    assert sorted(found) == ["terminal 1", "terminal 2"], found
    sim_exports, sim_commands = found["terminal 1"]
    assert len(sim_commands) == 1 and sim_commands[0][:2] == ["fixadapter", "simulate"], sim_commands
    simulator = subprocess.Popen(
        [*python_m(sim_commands[0]), *FREE_PORTS],
        cwd=tmp_path,
        env=clean_environment(sim_exports),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(READY_SECONDS, simulator.kill)  # a simulator that never gets ready
    watchdog.start()
    try:
        assert simulator.stdout is not None
        ready = simulator.stdout.readline()
        watchdog.cancel()
        assert ready.startswith(READY_LINE), ready + (simulator.stderr.read() if simulator.stderr else "")

        order_exports, order_commands = found["terminal 2"]
        assert order_commands, "terminal 2 runs at least one command"
        results = [
            subprocess.run(
                python_m(command),
                cwd=tmp_path,
                env=clean_environment(order_exports),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            for command in order_commands
        ]
    finally:
        watchdog.cancel()
        simulator.terminate()
        try:
            simulator.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.communicate()

    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
    last = results[-1]
    assert [line.split()[0] for line in last.stdout.splitlines()] == ["submitted", "accepted", "filled"]
    assert "waiting for the first quote of EURUSD" in last.stderr
    assert "no quote" not in last.stderr
    password = order_exports["FIXADAPTER_ACCOUNTS__SIM__FIX__PASSWORD"]
    assert password not in last.stdout + last.stderr
    assert password not in (tmp_path / "sim-config.yaml").read_text(encoding="utf-8")

"""The built wheel works outside the checkout (issue 16, item 10): `pip wheel . --no-deps`, installed into a
fresh venv (no system site packages), run from an empty temporary directory, runs `fixadapter --version`,
`fixadapter simulate` up to its ready line, an order and `fixadapter check` against it, with the FIX
dictionary and the QuickFIX session template read from the package (no spec/ or sessions.cfg anywhere near).

The dependencies are not downloaded: the fresh venv gets one .pth line naming this interpreter's
site-packages, a plain path entry (its own .pth files, such as an editable install's finder pointing at a
checkout, are not run), after the venv's own site-packages where the wheel is installed. PYTHONPATH and
FIXADAPTER_* variables are dropped, and the test asserts the package comes from the venv.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

from fixadapter import __version__
from fixadapter.sim.runner import READY_LINE

ROOT = Path(__file__).resolve().parents[2]
READY_SECONDS = 60
PASSWORD = "wheel-test-pw"  # noqa: S105 - a test value


def run(command: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def test_the_wheel_installed_in_a_fresh_venv_runs_the_simulator_and_an_order_outside_the_checkout(
    tmp_path: Path,
):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("FIXADAPTER_")}
    source = tmp_path / "src"  # a copy: the build leaves build/ and *.egg-info where it runs
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "fixadapter", source / "fixadapter", ignore=shutil.ignore_patterns("__pycache__"))
    run(
        [sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q", "-w", str(tmp_path / "dist")],
        source,
        env,
    )
    (wheel,) = (tmp_path / "dist").glob("fixadapter-*.whl")

    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], tmp_path, env)
    python = venv / "bin" / "python"
    own_site = Path(
        run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env
        ).strip()
    )
    (own_site / "zz_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            str(wheel),
        ],
        tmp_path,
        env,
    )

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run([str(python), "-c", "import fixadapter; print(fixadapter.__file__)"], elsewhere, env).strip()
    assert Path(where).is_relative_to(own_site), where
    fixadapter = str(venv / "bin" / "fixadapter")
    assert run([fixadapter, "--version"], elsewhere, env) == f"fixadapter {__version__}\n"

    ports = [f"--{name}-port=0" for name in ("quote", "trade", "control", "openapi", "oauth")]
    simulator = subprocess.Popen(
        [fixadapter, "simulate", "--write-config", "sim-config.yaml", *ports],
        cwd=elsewhere,
        env={**env, "FIXADAPTER_SIM_PASSWORD": PASSWORD},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    watchdog = threading.Timer(READY_SECONDS, simulator.kill)
    watchdog.start()
    try:
        assert simulator.stdout is not None
        ready = simulator.stdout.readline()
        watchdog.cancel()
        assert ready.startswith(f"{READY_LINE}: QUOTE 127.0.0.1:"), ready + (
            simulator.stderr.read() if simulator.stderr else ""
        )
        order = subprocess.run(
            [
                fixadapter,
                "order",
                "--config",
                "sim-config.yaml",
                "--symbol",
                "EURUSD",
                "--side",
                "buy",
                "--quantity",
                "10000",
            ],
            cwd=elsewhere,
            env={**env, "FIXADAPTER_ACCOUNTS__SIM__FIX__PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        check = subprocess.run(
            [fixadapter, "check", "--config", "sim-config.yaml"],
            cwd=elsewhere,
            env={**env, "FIXADAPTER_ACCOUNTS__SIM__FIX__PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        watchdog.cancel()
        simulator.terminate()
        try:
            simulator.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            simulator.kill()
            simulator.communicate()

    assert order.returncode == 0, order.stdout + order.stderr
    assert [line.split()[0] for line in order.stdout.splitlines()] == ["submitted", "accepted", "filled"]
    assert check.returncode == 0, check.stdout + check.stderr  # `fixadapter check`: every step OK
    assert "FAILED" not in check.stdout and PASSWORD not in check.stdout + check.stderr
    assert not (elsewhere / "spec").exists() and not (elsewhere / "sessions.cfg").exists()

"""The Dockerfile and docker-compose.yml (not run here: no docker) agree with the code: the health check
asks a route the daemon serves, the exposed and published ports are the configured ones, var/ (where the
default store and compliance files go) is a volume, quickfix builds in its own cached layer at the version
pyproject.toml pins, and the compose daemon's config validates and reaches the compose simulator."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from fixadapter.config import HttpConfig, StoreConfig, build_config, load_config

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
HTTP_SOURCE = (ROOT / "fixadapter" / "daemon" / "http.py").read_text()


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    kept = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    text = re.sub(r"\\\n", " ", "\n".join(kept))
    found = []
    for line in text.splitlines():
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            found.append((word.upper(), rest.strip()))
    return found


def runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for word, rest in instructions():
        if word == "ENV":
            env.update(dict(pair.split("=", 1) for pair in shlex.split(rest)))
    return env


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / "docker-compose.yml").read_text()))


def served_routes() -> set[str]:
    return set(re.findall(r'add_get\("([^"]+)"', HTTP_SOURCE))


def test_the_health_check_gets_healthz_on_the_exposed_configured_port() -> None:
    (healthcheck,) = [rest for word, rest in instructions() if word == "HEALTHCHECK"]
    assert "/healthz" in served_routes()
    assert "'/healthz'" in healthcheck and "127.0.0.1" in healthcheck
    env = runtime_env()
    port = HttpConfig().port
    assert env["FIXADAPTER_DAEMON__HTTP__PORT"] == str(port)
    assert f"'{port}'" in healthcheck  # its default when the variable is unset
    (exposed,) = [rest for word, rest in instructions() if word == "EXPOSE"]
    assert exposed == str(port)


def test_the_http_bind_address_comes_from_the_environment() -> None:
    env = runtime_env()
    assert env["FIXADAPTER_DAEMON__HTTP__HOST"] == "0.0.0.0"
    account = {"host": "127.0.0.1", "sender_comp_id": "demo.x.1", "username": "1", "password": "pw"}
    environ = {**env, "FIXADAPTER_DAEMON__HTTP__TOKEN": "t"}
    http = build_config({"account": account}, environ=environ).daemon.http
    assert (http.host, http.port) == ("0.0.0.0", HttpConfig().port)


def test_var_is_a_volume_under_the_workdir_where_the_default_store_goes() -> None:
    workdirs = [rest for word, rest in instructions() if word == "WORKDIR"]
    (volume,) = [rest for word, rest in instructions() if word == "VOLUME"]
    assert workdirs[-1] == "/app" and volume == '["/app/var"]'
    assert StoreConfig().url.startswith("sqlite:///var/")


def test_quickfix_is_compiled_patched_in_its_own_layer_before_the_source_at_the_pinned_version() -> None:
    steps = instructions()
    pins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pinned,) = [p.split("==")[1] for p in pins if p.startswith("quickfix==")]
    (arg,) = [rest for word, rest in steps if word == "ARG" and rest.startswith("QUICKFIX_VERSION=")]
    assert arg == f"QUICKFIX_VERSION={pinned}"
    assert (ROOT / "patches" / f"quickfix-{pinned}.patch").exists()
    quickfix = next(
        i
        for i, (w, r) in enumerate(steps)
        if w == "RUN" and 'build_quickfix.py --version "${QUICKFIX_VERSION}"' in r
    )
    copied_before = [r for w, r in steps[:quickfix] if w == "COPY"]
    assert copied_before == ["scripts/build_quickfix.py ./scripts/", "patches ./patches"]
    source = next(i for i, (w, r) in enumerate(steps) if w == "COPY" and r.startswith("fixadapter"))
    assert quickfix < source


def test_compose_runs_every_service_and_mounts_files_that_exist(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert {"postgres", "redis", "prometheus", "grafana", "simulator", "fixadapter"} <= set(services)
    for service in services.values():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), source


def test_the_compose_daemon_config_validates_and_reaches_the_simulator_postgres_and_redis(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    daemon = services["fixadapter"]
    (mount,) = [v for v in daemon["volumes"] if v.endswith(":/app/config.yaml:ro")]
    environ = {k: str(v) for k, v in daemon["environment"].items()}
    config = load_config(ROOT / mount.split(":")[0], environ=environ)

    fix = config.fix_settings("sim")
    simulate = services["simulator"]["command"]
    assert simulate[:3] == ["simulate", "--host", "0.0.0.0"]
    assert fix.host == "simulator"
    option = dict(zip(simulate[1::2], simulate[2::2], strict=False))
    assert (str(fix.quote_port), str(fix.trade_port)) == (option["--quote-port"], option["--trade-port"])
    assert fix.password.get_secret_value() == services["simulator"]["environment"]["FIXADAPTER_SIM_PASSWORD"]
    assert "@postgres:5432/" in config.store.url
    assert (
        config.daemon.queue.kind == "redis"
        and "//redis:6379/" in config.daemon.queue.redis_url.get_secret_value()
    )
    assert config.logging.json_lines

    http = config.daemon.http
    assert daemon["ports"] == [f"127.0.0.1:{http.port}:{http.port}"]
    prometheus = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    (target,) = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert target == f"fixadapter:{http.port}" and "fixadapter" in http.allowed_hosts
    assert http.token is not None
    assert set(daemon["depends_on"]) == {"postgres", "redis", "simulator"}

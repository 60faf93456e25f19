"""`fixadapter openapi login` and token rotation over real loopback HTTP against the simulator's token
endpoint (issue 15, item 4).

It specifies: the code comes back on the loopback listener (a browser is simulated by an HTTP client
following the authorize endpoint's redirect) or pasted, is exchanged once, and the pair is stored
encrypted before anything is printed; a used or expired code, a wrong client secret and a spent refresh
token are refused with what to do; a refresh rotates the pair, stores it before returning it, and the old
refresh token then fails; a crash before the refresh reached the server or after the new pair was stored
leaves a pair that works; a redirect with another state is ignored. No token, code or secret appears in a
log line, an error text or the CLI's output.

The endpoint runs in its own thread and loop (the CLI runs `asyncio.run` itself); its clock is a counter
the tests move, so expiry needs no waiting.
"""

from __future__ import annotations

import asyncio
import io
import logging
import threading
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from fixadapter import cli
from fixadapter.connectors.openapi.auth_config import OpenApiAppConfig
from fixadapter.connectors.openapi.login import LoginOptions, login, login_summary
from fixadapter.connectors.openapi.oauth import (
    AuthorizationCodeRefused,
    ClientRefused,
    RefreshTokenRefused,
    TokenEndpointError,
    authorization_url,
    exchange_code,
    refresh,
)
from fixadapter.connectors.openapi.redirect import AuthorizationDenied, RedirectListener, code_from_pasted
from fixadapter.connectors.openapi.tokens import (
    TOKEN_KEY_ENV,
    FileTokenStore,
    TokenFileError,
    TokenPair,
    grant_key,
    rotate,
)
from fixadapter.errors import ConfigError
from fixadapter.sim.oauth_server import OAuthTestServer

CLIENT_ID = "client-7"
CLIENT_SECRET = "client-secret-S3CR3T-value"  # noqa: S105 - a test value
REDIRECT = "http://127.0.0.1:9/callback"  # registered redirect for exchanges that need no listener
KEY = grant_key(CLIENT_ID)


@dataclass
class Clock:
    now: float = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Endpoint:
    """The simulator's OAuth endpoint, served from its own thread."""

    server: OAuthTestServer
    clock: Clock
    seen_secrets: list[str] = field(default_factory=list)

    def code(self, redirect_uri: str = REDIRECT) -> str:
        code = self.server.issue_code(CLIENT_ID, redirect_uri)
        self.seen_secrets.append(code)
        return code

    def app(self, tmp_path: Path, secret: str = CLIENT_SECRET) -> OpenApiAppConfig:
        return OpenApiAppConfig(
            client_id=CLIENT_ID,
            client_secret=SecretStr(secret),
            authorize_url=self.server.authorize_url,
            token_url=self.server.token_url,
            token_file=tmp_path / "tokens.fernet",
        )

    def remember(self, *pairs: TokenPair) -> None:
        for pair in pairs:
            self.seen_secrets += [pair.access_token.get_secret_value(), pair.refresh_token.get_secret_value()]


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    clock = Clock()
    server = OAuthTestServer({CLIENT_ID: CLIENT_SECRET}, clock=clock)
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(server.start())
        started.set()
        loop.run_forever()
        loop.run_until_complete(server.close())
        loop.close()

    thread = threading.Thread(target=serve, name="oauth-endpoint", daemon=True)
    thread.start()
    started.wait()
    yield Endpoint(server, clock, [CLIENT_SECRET])
    loop.call_soon_threadsafe(loop.stop)
    thread.join()


@pytest.fixture
def environ() -> dict[str, str]:
    return {TOKEN_KEY_ENV: Fernet.generate_key().decode()}


@pytest.fixture(autouse=True)
def all_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)


def assert_no_secret(endpoint: Endpoint, *texts: str) -> None:
    for text in texts:
        for secret in endpoint.seen_secrets:
            assert secret not in text


def browse_in_thread(url: str) -> None:
    """A browser: follows the authorize page's redirect to the listener (urllib follows 302)."""

    def visit() -> None:
        with urllib.request.urlopen(url, timeout=60) as page:  # noqa: S310 - loopback http
            page.read()

    threading.Thread(target=visit, name="browser", daemon=True).start()


def test_authorization_url_carries_client_id_redirect_scope_and_state(tmp_path: Path) -> None:
    app = OpenApiAppConfig(client_id=CLIENT_ID, client_secret=SecretStr(CLIENT_SECRET))

    url = authorization_url(app, "http://127.0.0.1:5050/callback", "st4te")

    assert url == (
        "https://openapi.ctrader.com/apps/auth?client_id=client-7"
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A5050%2Fcallback&scope=trading&state=st4te"
    )
    assert CLIENT_SECRET not in url


def test_login_over_the_loopback_redirect_stores_a_pair_the_server_accepts(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = endpoint.app(tmp_path)
    store = FileTokenStore(app.token_file, environ)
    out = io.StringIO()
    pages: list[str] = []

    async def main() -> None:
        browsing: list[asyncio.Task[None]] = []

        async def browser(url: str) -> None:
            async with aiohttp.ClientSession() as session, session.get(url) as page:
                pages.append(f"{page.status} {await page.text()}")

        result = await login(
            app,
            store,
            LoginOptions(),
            out,
            open_browser=lambda url: browsing.append(asyncio.create_task(browser(url))),
        )
        await asyncio.gather(*browsing)
        endpoint.remember(result.pair)
        out.write(login_summary(app, result))

    asyncio.run(main())

    stored = FileTokenStore(app.token_file, environ).load(KEY)
    assert stored is not None
    endpoint.remember(stored)
    assert endpoint.server.access_token_valid(stored.access_token.get_secret_value())
    assert pages[0].startswith("200 ") and "You can close this window" in pages[0]
    assert "Open this URL" in out.getvalue() and f"Stored the token pair for {KEY}" in out.getvalue()
    assert_no_secret(endpoint, out.getvalue(), caplog.text, app.token_file.read_text("latin-1"))


def test_cli_login_takes_the_redirect_on_the_listener_and_prints_no_secret(
    endpoint: Endpoint,
    environ: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("FIXADAPTER_OPENAPI__CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("FIXADAPTER_OPENAPI__CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv(TOKEN_KEY_ENV, environ[TOKEN_KEY_ENV])
    monkeypatch.setattr("webbrowser.open", browse_in_thread)
    token_file = tmp_path / "tokens.fernet"

    status = cli.main(
        [
            "openapi", "login", "--open-browser", "--token-file", str(token_file),
            "--authorize-url", endpoint.server.authorize_url, "--token-url", endpoint.server.token_url,
            "--no-list",
        ]
    )  # fmt: skip

    captured = capsys.readouterr()
    assert status == 0, captured.err
    stored = FileTokenStore(token_file, environ).load(KEY)
    assert stored is not None
    endpoint.remember(stored)
    assert endpoint.server.access_token_valid(stored.access_token.get_secret_value())
    assert "expires" in captured.out and "fixadapter openapi accounts" in captured.out
    assert_no_secret(endpoint, captured.out, captured.err, caplog.text)


def test_cli_login_with_a_pasted_redirect_url_stores_the_pair(
    endpoint: Endpoint,
    environ: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("FIXADAPTER_OPENAPI__CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.setenv(TOKEN_KEY_ENV, environ[TOKEN_KEY_ENV])
    code = endpoint.code()
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{REDIRECT}?code={code}\n"))
    token_file = tmp_path / "tokens.fernet"

    status = cli.main(
        [
            "openapi", "login", "--paste", "--client-id", CLIENT_ID, "--redirect-uri", REDIRECT,
            "--token-file", str(token_file), "--token-url", endpoint.server.token_url, "--no-list",
        ]
    )  # fmt: skip

    captured = capsys.readouterr()
    assert status == 0, captured.err
    stored = FileTokenStore(token_file, environ).load(KEY)
    assert stored is not None
    endpoint.remember(stored)
    assert endpoint.server.access_token_valid(stored.access_token.get_secret_value())
    assert_no_secret(endpoint, captured.out, captured.err, caplog.text)


def test_cli_login_without_the_key_names_the_variable_before_any_browser(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FIXADAPTER_OPENAPI__CLIENT_SECRET", CLIENT_SECRET)
    monkeypatch.delenv(TOKEN_KEY_ENV, raising=False)
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", opened.append)

    status = cli.main(
        ["openapi", "login", "--open-browser", "--client-id", CLIENT_ID, "--token-file", str(tmp_path / "t")]
    )

    captured = capsys.readouterr()
    assert status == 1  # a configuration problem: refused (usage errors are 2)
    assert TOKEN_KEY_ENV in captured.err and "generate_key" in captured.err
    assert opened == []
    assert CLIENT_SECRET not in captured.out + captured.err


def test_a_used_code_is_refused_with_what_to_do(
    endpoint: Endpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = endpoint.app(tmp_path)
    code = SecretStr(endpoint.code())
    first = asyncio.run(exchange_code(app, code, REDIRECT))
    endpoint.remember(first)

    with pytest.raises(AuthorizationCodeRefused) as caught:
        asyncio.run(exchange_code(app, code, REDIRECT))

    assert "already used" in str(caught.value)
    assert "run `fixadapter openapi login` again" in str(caught.value)
    assert_no_secret(endpoint, str(caught.value), caplog.text)


def test_an_expired_code_is_refused_with_what_to_do(endpoint: Endpoint, tmp_path: Path) -> None:
    code = SecretStr(endpoint.code())
    endpoint.clock.now += endpoint.server.code_lifetime

    with pytest.raises(AuthorizationCodeRefused) as caught:
        asyncio.run(exchange_code(endpoint.app(tmp_path), code, REDIRECT))

    assert "expired" in str(caught.value) and "within the minute" in str(caught.value)
    assert_no_secret(endpoint, str(caught.value))


def test_a_wrong_client_secret_is_refused_naming_what_to_check(
    endpoint: Endpoint, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "wrong-secret-W0W0W0"
    endpoint.seen_secrets.append(wrong)

    with pytest.raises(ClientRefused) as caught:
        asyncio.run(exchange_code(endpoint.app(tmp_path, wrong), SecretStr(endpoint.code()), REDIRECT))

    assert "FIXADAPTER_OPENAPI__CLIENT_SECRET" in str(caught.value)
    assert_no_secret(endpoint, str(caught.value), caplog.text)


def test_an_unreachable_endpoint_says_so_without_the_query(endpoint: Endpoint, tmp_path: Path) -> None:
    app = endpoint.app(tmp_path).model_copy(update={"token_url": "http://127.0.0.1:9/apps/token"})

    with pytest.raises(TokenEndpointError) as caught:
        asyncio.run(exchange_code(app, SecretStr(endpoint.code()), REDIRECT))

    assert "http://127.0.0.1:9/apps/token" in str(caught.value)
    assert_no_secret(endpoint, str(caught.value))


def _logged_in(endpoint: Endpoint, tmp_path: Path, environ: dict[str, str]) -> FileTokenStore:
    app = endpoint.app(tmp_path)
    store = FileTokenStore(app.token_file, environ)
    pair = asyncio.run(exchange_code(app, SecretStr(endpoint.code()), REDIRECT))
    endpoint.remember(pair)
    store.save(KEY, pair)
    return store


def test_refresh_rotates_the_pair_and_the_old_refresh_token_then_fails(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app = endpoint.app(tmp_path)
    store = _logged_in(endpoint, tmp_path, environ)
    old = store.load(KEY)
    assert old is not None

    new = asyncio.run(rotate(store, KEY, lambda token: refresh(app, token)))
    endpoint.remember(new)

    assert new.refresh_token != old.refresh_token and new.access_token != old.access_token
    assert endpoint.server.access_token_valid(new.access_token.get_secret_value())
    assert not endpoint.server.access_token_valid(old.access_token.get_secret_value())
    with pytest.raises(RefreshTokenRefused) as caught:
        asyncio.run(refresh(app, old.refresh_token))
    assert "run `fixadapter openapi login` again" in str(caught.value)
    assert_no_secret(endpoint, str(caught.value), caplog.text)


@dataclass
class SecondSaveFails:
    """A store whose disk fills up after the refresh was answered (the second save of `rotate`)."""

    inner: FileTokenStore
    saves: int = 0

    def load(self, key: str) -> TokenPair | None:
        return self.inner.load(key)

    def save(self, key: str, pair: TokenPair) -> None:
        self.saves += 1
        if self.saves == 2:
            raise TokenFileError("cannot write the token file: No space left on device")
        self.inner.save(key, pair)

    def acquire_refresh(self, key: str, wait: float) -> Callable[[], None]:
        return self.inner.acquire_refresh(key, wait)


def test_the_rotated_pair_is_on_disk_before_it_is_returned(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path
) -> None:
    app = endpoint.app(tmp_path)
    store = _logged_in(endpoint, tmp_path, environ)

    new = asyncio.run(rotate(store, KEY, lambda token: refresh(app, token)))
    endpoint.remember(new)
    assert FileTokenStore(app.token_file, environ).load(KEY) == new

    with pytest.raises(TokenFileError):  # the newer pair could not be stored, so it is never handed out
        asyncio.run(rotate(SecondSaveFails(store), KEY, lambda token: refresh(app, token)))
    left = FileTokenStore(app.token_file, environ).load(KEY)
    assert left is not None
    # The server had rotated already: the pair left is spent, and it says a refresh was cut short.
    assert left.refresh_started_at is not None and left.access_token == new.access_token
    with pytest.raises(RefreshTokenRefused, match="fixadapter openapi login"):
        asyncio.run(refresh(app, left.refresh_token))


def test_a_crash_after_the_new_pair_was_stored_leaves_a_working_pair(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path
) -> None:
    app = endpoint.app(tmp_path)
    store = _logged_in(endpoint, tmp_path, environ)

    class Crash(BaseException):
        pass

    async def refresh_then_crash() -> None:
        new = await rotate(store, KEY, lambda token: refresh(app, token))
        endpoint.remember(new)
        raise Crash  # the process dies before it uses the new pair

    with pytest.raises(Crash):
        asyncio.run(refresh_then_crash())

    after_restart = FileTokenStore(app.token_file, environ).load(KEY)
    assert after_restart is not None
    assert after_restart.refresh_started_at is None
    assert endpoint.server.access_token_valid(after_restart.access_token.get_secret_value())
    again = asyncio.run(refresh(app, after_restart.refresh_token))
    endpoint.remember(again)


def test_a_crash_before_the_refresh_reached_the_server_leaves_the_old_pair_working(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path
) -> None:
    app = endpoint.app(tmp_path)
    store = _logged_in(endpoint, tmp_path, environ)
    old = store.load(KEY)
    assert old is not None

    class Crash(BaseException):
        pass

    async def crash(token: SecretStr) -> TokenPair:
        raise Crash

    with pytest.raises(Crash):
        asyncio.run(rotate(store, KEY, crash))

    after_restart = FileTokenStore(app.token_file, environ).load(KEY)
    assert after_restart is not None
    assert after_restart.refresh_started_at is not None  # it says a refresh was under way
    assert after_restart.access_token == old.access_token
    assert endpoint.server.access_token_valid(after_restart.access_token.get_secret_value())
    new = asyncio.run(rotate(store, KEY, lambda token: refresh(app, token)))
    endpoint.remember(new)
    assert FileTokenStore(app.token_file, environ).load(KEY) == new


def test_a_redirect_with_another_state_is_ignored_and_the_wait_goes_on() -> None:
    async def main() -> tuple[list[int], SecretStr, int]:
        async with RedirectListener("our-state") as listener, aiohttp.ClientSession() as browser:
            statuses = []
            for query in ("code=forged&state=theirs", "code=forged", "code=the-code&state=our-state"):
                async with browser.get(f"{listener.redirect_uri}?{query}") as page:
                    statuses.append(page.status)
            return statuses, await listener.wait_for_code(60), listener.ignored

    statuses, code, ignored = asyncio.run(main())

    assert statuses == [400, 400, 200]
    assert code.get_secret_value() == "the-code"
    assert ignored == 2


def test_a_declined_authorization_ends_the_wait_with_what_to_do() -> None:
    async def main() -> None:
        async with RedirectListener("s") as listener, aiohttp.ClientSession() as browser:
            async with browser.get(f"{listener.redirect_uri}?error=access_denied&state=s") as page:
                assert page.status == 400
            await listener.wait_for_code(60)

    with pytest.raises(AuthorizationDenied, match=r"access_denied.*fixadapter openapi login"):
        asyncio.run(main())


def test_a_pasted_code_or_redirect_url_gives_the_code_and_another_state_is_refused() -> None:
    assert code_from_pasted("  abc123\n", "s").get_secret_value() == "abc123"
    assert code_from_pasted(f"{REDIRECT}?code=abc123&state=s", "s").get_secret_value() == "abc123"
    assert code_from_pasted(f"{REDIRECT}?code=abc123", "s").get_secret_value() == "abc123"
    with pytest.raises(AuthorizationDenied, match="state mismatch"):
        code_from_pasted(f"{REDIRECT}?code=abc123&state=other", "s")
    with pytest.raises(AuthorizationDenied, match="no code"):
        code_from_pasted(f"{REDIRECT}?state=s", "s")


def test_a_code_is_refused_for_another_redirect_uri(endpoint: Endpoint, tmp_path: Path) -> None:
    code = SecretStr(endpoint.code("http://127.0.0.1:9/callback"))

    with pytest.raises(AuthorizationCodeRefused, match="redirect_uri differs"):
        asyncio.run(exchange_code(endpoint.app(tmp_path), code, "http://127.0.0.1:9/elsewhere"))


def test_a_redirect_uri_that_is_not_loopback_or_a_taken_port_is_a_config_error(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path
) -> None:
    app = endpoint.app(tmp_path)
    store = FileTokenStore(app.token_file, environ)

    with pytest.raises(ConfigError, match="not a loopback URL"):
        asyncio.run(login(app, store, LoginOptions(redirect_uri="https://example.com/cb"), io.StringIO()))

    async def port_taken() -> None:
        async with RedirectListener("s") as other:
            taken = LoginOptions(redirect_uri=f"http://127.0.0.1:{other.port}/cb")
            await login(app, store, taken, io.StringIO())

    with pytest.raises(ConfigError, match="cannot listen for the redirect on 127"):
        asyncio.run(port_taken())


def test_the_application_settings_show_no_secret() -> None:
    environ = {"FIXADAPTER_OPENAPI__CLIENT_SECRET": CLIENT_SECRET}
    app = OpenApiAppConfig.from_environment(environ, client_id="c")

    assert CLIENT_SECRET not in repr(app) + str(app)
    with pytest.raises(ConfigError, match="FIXADAPTER_OPENAPI__CLIENT_SECRET"):
        OpenApiAppConfig.from_environment({}, client_id="c")


def test_a_refresh_another_process_already_made_is_used_not_made_again(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path
) -> None:
    """Two daemons on one grant: the one that comes second finds the pair rotated under the lock and takes
    it, instead of refreshing the pair it held (whose refresh token the first one spent)."""
    app = endpoint.app(tmp_path)
    store = _logged_in(endpoint, tmp_path, environ)
    held = store.load(KEY)
    assert held is not None
    first = asyncio.run(rotate(store, KEY, lambda token: refresh(app, token), seen=held))
    endpoint.remember(first)
    calls = endpoint.server.token_requests
    second = asyncio.run(rotate(store, KEY, lambda token: refresh(app, token), seen=held))
    assert second == first
    assert endpoint.server.token_requests == calls


def test_a_refresh_waits_for_another_process_holding_the_lock_and_says_so_when_it_never_lets_go(
    endpoint: Endpoint, environ: dict[str, str], tmp_path: Path
) -> None:
    app = endpoint.app(tmp_path)
    store = _logged_in(endpoint, tmp_path, environ)
    other = FileTokenStore(app.token_file, environ)
    release = other.acquire_refresh(KEY, 1.0)
    try:
        with pytest.raises(TokenFileError, match="another process has been refreshing"):
            asyncio.run(rotate(store, KEY, lambda token: refresh(app, token), lock_wait=0.2))
    finally:
        release()
    endpoint.remember(asyncio.run(rotate(store, KEY, lambda token: refresh(app, token))))

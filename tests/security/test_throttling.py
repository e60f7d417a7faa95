"""Brute-force throttling over HTTP (RFC 6749 §2.3.1, §4.3.2, §10.10; RFC 9700 §4.16).

Password grant and client authentication: failures count per account and per IP; the failure that reaches the
limit still answers the usual 400/401, every later attempt (a correct one too) gets the same error code with 429
and ``Retry-After`` until the lock ends; a success resets the account's count.
"""

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from oauth_service.runtime import Runtime
from oauth_service.settings import SettingsError, load_settings
from tests.authorization_helpers import CALLBACK, authorize_url, new_pkce, submit_login
from tests.bearer import basic
from tests.factories import make_client, make_user
from tests.live_server import free_port
from tests.security.conftest import REDIS_URL, AppFactory, LogCapture, http_client

TOKEN = "/oauth/token"
LOCKED_GRANT = {
    "error": "invalid_grant",
    "error_description": "Too many failed attempts; retry later.",
}
LOCKED_CLIENT = {
    "error": "invalid_client",
    "error_description": "Too many failed attempts; retry later.",
}
BAD_LOGIN = {
    "error": "invalid_grant",
    "error_description": "Invalid email or password.",
}
EMAIL = "alice@example.com"
PASSWORD = "correct horse battery"


async def _password_app(
    make_app: AppFactory, **overrides: object
) -> tuple[FastAPI, str]:
    """An app with a user and a public password-grant client; returns the client id."""
    overrides.setdefault("max_failed_logins", 3)
    overrides.setdefault("lockout_seconds", 120)
    app = await make_app(**overrides)
    runtime: Runtime = app.state.runtime
    await make_user(runtime, email=EMAIL, password=PASSWORD)
    client, _ = await make_client(runtime, grant_types=("password",), is_public=True)
    return app, client.client_id


async def _login(
    http: httpx.AsyncClient,
    client_id: str,
    password: str,
    *,
    email: str = EMAIL,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    form = {
        "grant_type": "password",
        "client_id": client_id,
        "email": email,
        "password": password,
    }
    return await http.post(TOKEN, data=form, headers=headers)


def _assert_locked(
    response: httpx.Response, body: dict[str, str], lockout: int
) -> None:
    assert response.status_code == 429, response.text
    assert response.json() == body
    assert response.headers["cache-control"] == "no-store"
    assert 0 < int(response.headers["retry-after"]) <= lockout
    assert "www-authenticate" not in response.headers


async def _web_client_authorize_url(runtime: Runtime) -> str:
    """Register the public PKCE client ``web`` and return an authorize URL for it (its login page's way in)."""
    await make_client(
        runtime,
        client_id="web",
        is_public=True,
        grant_types=("authorization_code",),
        redirect_uris=(CALLBACK,),
    )
    _, challenge = new_pkce()
    return authorize_url(
        response_type="code",
        client_id="web",
        redirect_uri=CALLBACK,
        code_challenge=challenge,
        code_challenge_method="S256",
    )


def _assert_login_page_locked(page: httpx.Response) -> None:
    assert page.status_code == 429, page.text
    assert "Too many failed sign-in attempts. Try again later." in page.text
    assert "set-cookie" not in page.headers


async def test_password_grant_after_max_failures_is_locked_even_for_correct_password(
    make_app: AppFactory,
) -> None:
    app, client_id = await _password_app(make_app)
    async with http_client(app) as http:
        for _ in range(3):
            response = await _login(http, client_id, "wrong")
            assert (response.status_code, response.json()) == (400, BAD_LOGIN)
        _assert_locked(await _login(http, client_id, PASSWORD), LOCKED_GRANT, 120)
        # The lock is on the email whatever its case.
        _assert_locked(
            await _login(http, client_id, PASSWORD, email=EMAIL.upper()),
            LOCKED_GRANT,
            120,
        )


async def test_password_grant_success_resets_account_counter(
    make_app: AppFactory,
) -> None:
    app, client_id = await _password_app(make_app)
    async with http_client(app) as http:
        for _ in range(2):
            assert (await _login(http, client_id, "wrong")).status_code == 400
        assert (await _login(http, client_id, PASSWORD)).status_code == 200
        for _ in range(2):
            assert (await _login(http, client_id, "wrong")).status_code == 400
        assert (await _login(http, client_id, PASSWORD)).status_code == 200


async def test_password_grant_failures_from_many_ips_lock_the_account(
    make_app: AppFactory,
) -> None:
    app, client_id = await _password_app(make_app)
    for index in range(3):
        async with http_client(app, ip=f"198.51.100.{index + 1}") as http:
            assert (await _login(http, client_id, "wrong")).status_code == 400
    async with http_client(app, ip="192.0.2.200") as http:
        _assert_locked(await _login(http, client_id, PASSWORD), LOCKED_GRANT, 120)


async def test_password_grant_spraying_from_one_ip_locks_the_ip_only(
    make_app: AppFactory,
) -> None:
    app, client_id = await _password_app(make_app, max_failed_logins_per_ip=4)
    async with http_client(app, ip="203.0.113.50") as attacker:
        for index in range(4):
            response = await _login(
                attacker, client_id, "guess", email=f"u{index}@example.com"
            )
            assert response.status_code == 400
        _assert_locked(await _login(attacker, client_id, PASSWORD), LOCKED_GRANT, 120)
    async with http_client(app, ip="203.0.113.51") as user:
        assert (await _login(user, client_id, PASSWORD)).status_code == 200


async def test_forwarded_for_from_untrusted_peer_is_ignored(
    make_app: AppFactory,
) -> None:
    app, client_id = await _password_app(make_app, max_failed_logins_per_ip=2)
    async with http_client(app, ip="203.0.113.60") as attacker:
        for index in range(2):
            spoofed = {"X-Forwarded-For": f"192.0.2.{index + 1}"}
            response = await _login(
                attacker,
                client_id,
                "guess",
                email=f"v{index}@example.com",
                headers=spoofed,
            )
            assert response.status_code == 400
        fresh = {"X-Forwarded-For": "192.0.2.99"}
        _assert_locked(
            await _login(attacker, client_id, PASSWORD, headers=fresh),
            LOCKED_GRANT,
            120,
        )


async def test_forwarded_for_from_trusted_proxy_names_the_client(
    make_app: AppFactory,
) -> None:
    app, client_id = await _password_app(
        make_app, max_failed_logins_per_ip=2, trusted_proxies=["10.0.0.0/8"]
    )
    attacker = {"X-Forwarded-For": "192.0.2.10, 10.1.2.3"}
    victim = {
        "X-Forwarded-For": "1.2.3.4, 192.0.2.20"
    }  # the left hop is client-supplied
    async with http_client(app, ip="10.0.0.2") as proxy:
        for index in range(2):
            response = await _login(
                proxy,
                client_id,
                "guess",
                email=f"w{index}@example.com",
                headers=attacker,
            )
            assert response.status_code == 400
        _assert_locked(
            await _login(proxy, client_id, PASSWORD, headers=attacker),
            LOCKED_GRANT,
            120,
        )
        assert (
            await _login(proxy, client_id, PASSWORD, headers=victim)
        ).status_code == 200


async def test_client_auth_after_max_failures_is_locked_even_for_correct_secret(
    make_app: AppFactory,
) -> None:
    app = await make_app(max_failed_logins=2, lockout_seconds=60)
    client, secret = await make_client(app.state.runtime)
    assert secret is not None

    form = {"grant_type": "client_credentials"}
    async with http_client(app) as http:
        for _ in range(2):
            response = await http.post(
                TOKEN, data=form, headers=basic(client.client_id, "wrong")
            )
            assert response.status_code == 401
            assert response.json()["error"] == "invalid_client"
        _assert_locked(
            await http.post(TOKEN, data=form, headers=basic(client.client_id, secret)),
            LOCKED_CLIENT,
            60,
        )
        post = {**form, "client_id": client.client_id, "client_secret": secret}
        _assert_locked(await http.post(TOKEN, data=post), LOCKED_CLIENT, 60)


async def test_throttling_emits_locked_and_refused_audit_events(
    make_app: AppFactory, captured_logs: LogCapture
) -> None:
    app, client_id = await _password_app(make_app)
    async with http_client(app, ip="203.0.113.70") as http:
        for _ in range(3):
            await _login(http, client_id, "wrong")
        await _login(
            http, client_id, PASSWORD, headers={"X-Request-ID": "req-locked-1"}
        )
    (locked,) = captured_logs.events("throttle.locked")
    assert (locked["kind"], locked["scope"], locked["client_ip"]) == (
        "password",
        "account",
        "203.0.113.70",
    )
    (refused,) = captured_logs.events("throttle.refused")
    assert refused["request_id"] == "req-locked-1"
    assert refused["kind"] == "password"
    assert 0 < refused["retry_after"] <= 120
    assert len(captured_logs.events("login.failed")) == 3
    assert PASSWORD not in captured_logs.text
    assert EMAIL not in captured_logs.text


async def test_redis_throttle_is_shared_between_apps(
    make_app: AppFactory, redis_prefix: str
) -> None:
    shared = {"redis_url": REDIS_URL, "throttle_key_prefix": redis_prefix}
    app_a, client_id = await _password_app(make_app, **shared)
    app_b = await make_app(max_failed_logins=3, lockout_seconds=120, **shared)
    async with http_client(app_a) as http_a, http_client(app_b) as http_b:
        assert (await _login(http_a, client_id, "wrong")).status_code == 400
        assert (await _login(http_b, client_id, "wrong")).status_code == 400
        assert (await _login(http_a, client_id, "wrong")).status_code == 400
        _assert_locked(await _login(http_b, client_id, PASSWORD), LOCKED_GRANT, 120)


async def test_unreachable_redis_fails_open_and_logs_address_and_cause_once(
    make_app: AppFactory, captured_logs: LogCapture
) -> None:
    port = free_port()  # nothing listens there
    app, client_id = await _password_app(
        make_app, redis_url=f"redis://:hunter2@127.0.0.1:{port}/0"
    )
    async with http_client(app) as http:
        for _ in range(4):
            assert (await _login(http, client_id, "wrong")).json() == BAD_LOGIN
        assert (await _login(http, client_id, PASSWORD)).status_code == 200
    warnings = [
        line["msg"]
        for line in captured_logs.lines()
        if line["logger"] == "oauth_service.throttle"
    ]
    # One line for the whole outage (a dozen storage calls failed), with the address but not the password.
    assert warnings == [
        f"throttle storage at redis://127.0.0.1:{port}/0 unavailable (ConnectionError: Error 111 "
        f"connecting to 127.0.0.1:{port}. Connect call failed ('127.0.0.1', {port}).); "
        "failed logins are not counted until it answers"
    ]
    assert "hunter2" not in captured_logs.text


@pytest.mark.parametrize(
    "entry", ["10.0.0.0/33", "proxy.internal", "10.0.0.1 nonsense"]
)
def test_settings_with_malformed_trusted_proxy_are_refused(entry: str) -> None:
    with pytest.raises(SettingsError, match="OAUTH_TRUSTED_PROXIES"):
        load_settings(trusted_proxies=entry)


async def test_login_form_shares_the_lock_with_the_password_grant(
    make_app: AppFactory,
) -> None:
    app, client_id = await _password_app(make_app)
    url = await _web_client_authorize_url(app.state.runtime)
    async with http_client(app) as http:
        login = (await http.get(url)).headers["location"]
        for _ in range(2):
            page = await submit_login(http, login, EMAIL, "wrong")
            assert page.status_code == 400
            assert "Invalid email or password." in page.text
        assert (await _login(http, client_id, "wrong")).status_code == 400
        page = await submit_login(http, login, EMAIL, PASSWORD)
        _assert_login_page_locked(page)
        assert 0 < int(page.headers["retry-after"]) <= 120


# Padding Python's str.strip() removes (space, tab, U+2004 THREE-PER-EM SPACE) and case: the user lookup
# ignores both, so the lockout key must too, or each spelling buys fresh guesses at one account.
CAROL = "carol@x.example"
CAROL_SPELLINGS = [
    f" {CAROL}",
    f"\t{CAROL}",
    f"\u2004{CAROL}",
    f"{CAROL}\n",
    CAROL.upper(),
    f" {CAROL.title()}\u2004",
]


async def _carol_app(make_app: AppFactory) -> tuple[FastAPI, str]:
    app = await make_app(max_failed_logins=5, lockout_seconds=120)
    runtime: Runtime = app.state.runtime
    await make_user(runtime, email=CAROL, password=PASSWORD)
    client, _ = await make_client(runtime, grant_types=("password",), is_public=True)
    return app, client.client_id


@pytest.mark.parametrize("spelling", CAROL_SPELLINGS, ids=repr)
async def test_password_grant_lock_holds_for_padded_and_cased_emails(
    make_app: AppFactory, spelling: str
) -> None:
    app, client_id = await _carol_app(make_app)
    async with http_client(app) as http:
        for _ in range(5):
            response = await _login(http, client_id, "wrong", email=CAROL)
            assert (response.status_code, response.json()) == (400, BAD_LOGIN)
        response = await _login(http, client_id, "wrong", email=spelling)
        _assert_locked(response, LOCKED_GRANT, 120)
        response = await _login(http, client_id, PASSWORD, email=spelling)
        _assert_locked(response, LOCKED_GRANT, 120)


@pytest.mark.parametrize("spelling", CAROL_SPELLINGS, ids=repr)
async def test_password_grant_failures_under_padded_emails_lock_the_account(
    make_app: AppFactory, spelling: str
) -> None:
    app, client_id = await _carol_app(make_app)
    async with http_client(app) as http:
        for _ in range(5):
            response = await _login(http, client_id, "wrong", email=spelling)
            assert (response.status_code, response.json()) == (400, BAD_LOGIN)
        response = await _login(http, client_id, PASSWORD, email=CAROL)
        _assert_locked(response, LOCKED_GRANT, 120)


@pytest.mark.parametrize("spelling", CAROL_SPELLINGS, ids=repr)
async def test_login_form_lock_holds_for_padded_and_cased_emails(
    make_app: AppFactory, spelling: str
) -> None:
    app, client_id = await _carol_app(make_app)
    url = await _web_client_authorize_url(app.state.runtime)
    async with http_client(app) as http:
        login = (await http.get(url)).headers["location"]
        for _ in range(5):
            assert (
                await _login(http, client_id, "wrong", email=CAROL)
            ).status_code == 400
        for password in ("wrong", PASSWORD):
            _assert_login_page_locked(
                await submit_login(http, login, spelling, password)
            )


async def _pending_rows(runtime: Runtime) -> int:
    async with runtime.engine.connect() as conn:
        count = await conn.scalar(text("SELECT count(*) FROM authorization_requests"))
    return int(count or 0)


async def test_authorize_requests_past_the_ip_rate_get_429_page_and_write_no_row(
    make_app: AppFactory,
) -> None:
    app = await make_app(max_authorize_requests_per_ip=3)
    runtime: Runtime = app.state.runtime
    url = await _web_client_authorize_url(runtime)
    async with http_client(app, ip="198.51.100.30") as flood:
        for _ in range(3):
            response = await flood.get(url)
            assert response.status_code == 302, response.text
            assert response.headers["location"].startswith("/oauth/login?request=")
        assert await _pending_rows(runtime) == 3
        refused = await flood.get(url)
        # An invalid request writes nothing and is not counted: it still gets its own 400 page.
        invalid = await flood.get(authorize_url(client_id="nobody"))
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"].startswith("text/html")
    assert 0 < int(refused.headers["retry-after"]) <= 60
    assert refused.headers["cache-control"] == "no-store"
    assert "location" not in refused.headers
    assert "temporarily_unavailable" in refused.text
    assert "Too many sign-in requests from this network." in refused.text
    assert invalid.status_code == 400
    assert await _pending_rows(runtime) == 3
    async with http_client(app, ip="198.51.100.31") as neighbour:
        assert (await neighbour.get(url)).status_code == 302


async def test_authorize_rate_is_shared_between_apps_through_redis(
    make_app: AppFactory, redis_prefix: str
) -> None:
    shared = {
        "redis_url": REDIS_URL,
        "throttle_key_prefix": redis_prefix,
        "max_authorize_requests_per_ip": 2,
    }
    app_a = await make_app(**shared)
    app_b = await make_app(**shared)
    await make_client(
        app_a.state.runtime,
        client_id="conf",
        grant_types=("authorization_code",),
        redirect_uris=(CALLBACK,),
    )
    url = authorize_url(response_type="code", client_id="conf", redirect_uri=CALLBACK)
    async with http_client(app_a) as http_a, http_client(app_b) as http_b:
        assert (await http_a.get(url)).status_code == 302
        assert (await http_b.get(url)).status_code == 302
        assert (await http_a.get(url)).status_code == 429
        assert (await http_b.get(url)).status_code == 429


# Introspection callers are counted per (client id, IP), apart from the token endpoint.

INTROSPECT = "/oauth/introspect"


async def _notes_app(make_app: AppFactory, **overrides: object) -> tuple[FastAPI, str]:
    """An app with the confidential client ``notes`` (a resource server that introspects); returns its secret."""
    app = await make_app(**overrides)
    _, secret = await make_client(app.state.runtime, client_id="notes")
    assert secret is not None
    return app, secret


async def _introspect(
    http: httpx.AsyncClient, client_id: str, secret: str
) -> httpx.Response:
    return await http.post(
        INTROSPECT, data={"token": "some-token"}, headers=basic(client_id, secret)
    )


async def _client_token(
    http: httpx.AsyncClient, client_id: str, secret: str
) -> httpx.Response:
    return await http.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers=basic(client_id, secret),
    )


async def test_misconfigured_introspection_caller_locks_only_itself(
    make_app: AppFactory,
) -> None:
    """A resource server retrying with a wrong secret does not lock its client's other instances or tokens."""
    app, right = await _notes_app(make_app, max_failed_logins=5, lockout_seconds=300)
    async with (
        http_client(app, ip="198.51.100.1") as broken,
        http_client(app, ip="198.51.100.2") as healthy,
    ):
        for _ in range(5):
            assert (await _introspect(broken, "notes", "wrong")).status_code == 401
        _assert_locked(await _introspect(broken, "notes", "wrong"), LOCKED_CLIENT, 300)
        # Locked at introspection from that address, even with the right secret ...
        _assert_locked(await _introspect(broken, "notes", right), LOCKED_CLIENT, 300)
        # ... but a correctly configured instance elsewhere is answered,
        assert (await _introspect(healthy, "notes", right)).json() == {"active": False}
        # and the client still gets tokens, from either address.
        assert (await _client_token(broken, "notes", right)).status_code == 200
        assert (await _client_token(healthy, "notes", right)).status_code == 200


async def test_token_endpoint_lock_does_not_lock_introspection(
    make_app: AppFactory,
) -> None:
    app, secret = await _notes_app(make_app, max_failed_logins=2, lockout_seconds=60)
    async with http_client(app) as http:
        for _ in range(2):
            assert (await _client_token(http, "notes", "wrong")).status_code == 401
        _assert_locked(await _client_token(http, "notes", secret), LOCKED_CLIENT, 60)
        response = await _introspect(http, "notes", secret)
        assert (response.status_code, response.json()) == (200, {"active": False})


async def test_introspection_failures_count_toward_the_ip_limit(
    make_app: AppFactory,
) -> None:
    """Guessing at introspection from one address, over many client ids, locks that address everywhere."""
    app, secret = await _notes_app(
        make_app, max_failed_logins=5, max_failed_logins_per_ip=3, lockout_seconds=60
    )
    async with (
        http_client(app, ip="198.51.100.9") as guesser,
        http_client(app, ip="198.51.100.10") as other,
    ):
        for n in range(3):
            assert (await _introspect(guesser, f"guess-{n}", "x")).status_code == 401
        _assert_locked(await _introspect(guesser, "notes", secret), LOCKED_CLIENT, 60)
        _assert_locked(await _client_token(guesser, "notes", secret), LOCKED_CLIENT, 60)
        assert (await _introspect(other, "notes", secret)).status_code == 200


async def test_introspection_success_resets_only_its_own_count(
    make_app: AppFactory,
) -> None:
    app, secret = await _notes_app(make_app, max_failed_logins=3, lockout_seconds=60)
    async with http_client(app) as http:
        for _ in range(2):
            assert (await _introspect(http, "notes", "wrong")).status_code == 401
        assert (await _introspect(http, "notes", secret)).status_code == 200
        for _ in range(2):
            assert (await _introspect(http, "notes", "wrong")).status_code == 401
        # Four failures in all, but the success in between reset the count: not locked.
        assert (await _introspect(http, "notes", secret)).status_code == 200

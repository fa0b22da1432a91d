import re

import pytest

from tests.conftest import make_settings
from tests.factories import PASSWORD, csrf_token, login, make_user
from tests.threads import at_once
from webapp.auth import throttle


def _post_login(client, email, password, **kwargs):
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_token(client)},
        **kwargs,
    )


def test_sign_in_goes_to_the_page_asked_for(client, session):
    user = make_user(session)
    token = csrf_token(client)
    response = client.post(
        "/login?next=/customers/",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/customers/"
    assert client.get("/customers/").status_code == 200


def test_sign_in_never_redirects_off_site(client, session):
    user = make_user(session)
    token = csrf_token(client)
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        client.get("/login")
        response = client.post(
            f"/login?next={target}",
            data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/journeys/"
        client.post("/logout", data={"csrf_token": csrf_token(client, "/journeys/")})


def test_a_wrong_password_says_so_without_saying_which_part(client, session):
    user = make_user(session)
    response = _post_login(client, user.email, "not the password")
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)
    response = _post_login(client, "nobody@example.com", PASSWORD)
    assert response.status_code == 401
    assert "do not match an active account" in response.get_data(as_text=True)


def test_an_empty_form_names_the_missing_fields(client):
    response = client.post("/login", data={"csrf_token": csrf_token(client)})
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert page.count("This field is required.") == 2
    assert 'aria-invalid="true"' in page


def test_failed_attempts_make_that_address_wait_for_that_account(client, session):
    user = make_user(session)
    for _ in range(5):
        assert _post_login(client, user.email, "not the password").status_code == 401
    response = _post_login(client, user.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
    assert 0 < int(response.headers["Retry-After"]) <= 15
    other = make_user(session)
    assert _post_login(client, other.email, PASSWORD).status_code == 302


@pytest.mark.security
def test_failures_from_one_address_do_not_lock_the_account_elsewhere(app, session):
    user = make_user(session)
    attacker = app.test_client()
    for _ in range(12):
        _post_login(
            attacker, user.email, "guess", environ_base={"REMOTE_ADDR": "10.6.6.6"}
        )
    assert (
        _post_login(
            attacker, user.email, PASSWORD, environ_base={"REMOTE_ADDR": "10.6.6.6"}
        ).status_code
        == 429
    )
    owner = app.test_client()
    response = _post_login(
        owner, user.email, PASSWORD, environ_base={"REMOTE_ADDR": "10.7.7.7"}
    )
    assert response.status_code == 302


@pytest.mark.security
def test_the_wait_doubles_with_each_further_failure(client, session, monkeypatch):
    user = make_user(session)
    now = [1_000_000_000_000]
    monkeypatch.setattr(throttle, "_now_ms", lambda: now[0])
    for _ in range(5):
        assert _post_login(client, user.email, "wrong").status_code == 401
    waits = []
    for _ in range(3):
        refused = _post_login(client, user.email, "wrong")
        assert refused.status_code == 429
        wait = int(refused.headers["Retry-After"])
        waits.append(wait)
        now[0] += wait * 1000
        assert _post_login(client, user.email, "wrong").status_code == 401
    assert waits == [15, 30, 60]
    now[0] += 120_000
    assert _post_login(client, user.email, PASSWORD).status_code == 302
    # The right password forgets the failures: the next mistake is a free one again.
    client.post("/logout", data={"csrf_token": csrf_token(client, "/journeys/")})
    assert _post_login(client, user.email, "wrong").status_code == 401


@pytest.mark.security
def test_parallel_wrong_passwords_cannot_all_be_checked(app, session):
    user = make_user(session)
    clients = [app.test_client() for _ in range(10)]
    tokens = [csrf_token(c) for c in clients]

    def attempt(i):
        return (
            clients[i]
            .post(
                "/login",
                data={
                    "email": user.email,
                    "password": "guess",
                    "csrf_token": tokens[i],
                },
            )
            .status_code
        )

    statuses = at_once(10, attempt)
    assert sorted(statuses) == [401] * 5 + [429] * 5


@pytest.mark.security
def test_the_throttle_admits_exactly_its_limits_under_concurrency(app):
    def admitted(attempts, email_of, address):
        def attempt(i):
            with app.app_context():
                return throttle.admit(email_of(i), address)

        return sum(1 for wait in at_once(attempts, attempt) if wait == 0)

    assert admitted(16, lambda i: "one@example.com", "10.0.0.1") == 5
    assert admitted(30, lambda i: f"u{i}@example.com", "10.0.0.2") == 20


def test_failed_attempts_are_limited_per_address(client, session):
    users = [make_user(session) for _ in range(5)]
    for attempt in range(20):
        user = users[attempt % 5]
        _post_login(
            client, user.email, "wrong", environ_base={"REMOTE_ADDR": "10.1.1.1"}
        )
    fresh = make_user(session)
    blocked = _post_login(
        client, fresh.email, PASSWORD, environ_base={"REMOTE_ADDR": "10.1.1.1"}
    )
    assert blocked.status_code == 429
    allowed = _post_login(
        client, fresh.email, PASSWORD, environ_base={"REMOTE_ADDR": "10.1.1.2"}
    )
    assert allowed.status_code == 302


def test_a_form_without_its_csrf_token_is_refused(client, session):
    user = make_user(session)
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 400
    assert "form expired" in response.get_data(as_text=True).lower()


def test_the_session_cookie_is_httponly_and_samesite_lax(client, session):
    user = make_user(session)
    response = _post_login(client, user.email, PASSWORD)
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Secure" not in cookie


def test_the_session_cookie_is_secure_over_https(app, session):
    client = app.test_client()
    user = make_user(session)
    token = csrf_token_https(client)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        base_url="https://localhost",
        headers={"Referer": "https://localhost/login"},
    )
    assert response.status_code == 302
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")
    )
    assert "Secure" in cookie


@pytest.mark.security
def test_the_session_cookie_is_secure_behind_a_trusted_https_proxy(
    app_factory, tmp_path, database_url, redis_url, redis_client, session
):
    settings = make_settings(
        tmp_path / "home", database_url, redis_url, THROUGHLINE_TRUST_PROXY="1"
    )
    client = app_factory(settings).test_client()
    user = make_user(session)
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "throughline.example"}
    page = client.get("/login", headers=proxied).get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        headers={**proxied, "Referer": "https://throughline.example/login"},
    )
    assert response.status_code == 302
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")
    )
    assert "Secure" in cookie


def test_a_forwarded_proto_is_ignored_without_a_trusted_proxy(client, session):
    user = make_user(session)
    proxied = {"X-Forwarded-Proto": "https"}
    page = client.get("/login", headers=proxied).get_data(as_text=True)
    token = re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
    response = client.post(
        "/login",
        data={"email": user.email, "password": PASSWORD, "csrf_token": token},
        headers=proxied,
    )
    assert response.status_code == 302
    cookie = next(
        c for c in response.headers.getlist("Set-Cookie") if c.startswith("session=")
    )
    assert "Secure" not in cookie


def csrf_token_https(client):
    import re

    page = client.get("/login", base_url="https://localhost").get_data(as_text=True)
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)


def test_sign_out_needs_a_post_with_csrf_and_ends_the_session(client, session):
    user = make_user(session)
    login(client, user)
    assert client.get("/logout").status_code == 405
    assert client.post("/logout").status_code == 400
    response = client.post(
        "/logout",
        headers={"X-CSRFToken": csrf_token(client, "/journeys/"), "HX-Request": "true"},
    )
    assert response.status_code == 302
    assert client.get("/journeys/").status_code == 302

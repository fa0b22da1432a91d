from tests.factories import PASSWORD, csrf_token, login, make_user


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


def test_failed_attempts_are_limited_per_account(client, session):
    user = make_user(session)
    for _ in range(5):
        assert _post_login(client, user.email, "not the password").status_code == 401
    response = _post_login(client, user.email, PASSWORD)
    assert response.status_code == 429
    assert "Too many failed sign-in attempts" in response.get_data(as_text=True)
    other = make_user(session)
    assert _post_login(client, other.email, PASSWORD).status_code == 302


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

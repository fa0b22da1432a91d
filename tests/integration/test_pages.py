from engine.crypto import SecretBox
from engine.demo import load_demo
from engine.models import JourneyStatus, Role
from tests.factories import login, make_journey, make_user


def _signed_in(client, session, role=Role.viewer):
    login(client, make_user(session, role))
    return client


def test_the_journeys_page_explains_what_to_do_when_empty(client, session):
    page = _signed_in(client, session).get("/journeys/").get_data(as_text=True)
    assert "No journeys yet" in page
    assert "throughline demo" in page
    for label in ("Journeys", "Channels", "Customers", "Analytics"):
        assert f">{label}</a>" in page
    assert ">Admin</a>" not in page  # only admins see the admin link


def test_the_home_page_leads_to_journeys(client, session):
    response = _signed_in(client, session).get("/")
    assert response.status_code == 302 and response.headers["Location"] == "/journeys/"


def test_journeys_are_searchable_and_filterable(client, session):
    make_journey(session, name="Cart recovery")
    make_journey(session, name="Onboarding", status=JourneyStatus.live)
    make_journey(session, name="Old cart flow", status=JourneyStatus.archived)
    _signed_in(client, session)
    page = client.get("/journeys/").get_data(as_text=True)
    assert (
        "Cart recovery" in page and "Onboarding" in page and "Old cart flow" not in page
    )
    page = client.get("/journeys/?q=cart").get_data(as_text=True)
    assert "Cart recovery" in page and "Onboarding" not in page
    page = client.get("/journeys/?status=archived").get_data(as_text=True)
    assert "Old cart flow" in page and "Cart recovery" not in page
    page = client.get("/journeys/?q=zzz").get_data(as_text=True)
    assert "No journey matches" in page


def test_an_htmx_search_gets_only_the_list(client, session):
    make_journey(session, name="Cart recovery")
    _signed_in(client, session)
    response = client.get("/journeys/?q=cart", headers={"HX-Request": "true"})
    body = response.get_data(as_text=True)
    assert "Cart recovery" in body
    assert "<html" not in body
    assert "HX-Request" in response.headers["Vary"]
    boosted = client.get(
        "/journeys/?q=cart", headers={"HX-Request": "true", "HX-Boosted": "true"}
    )
    assert "<html" in boosted.get_data(as_text=True)


def test_lists_page(client, session):
    for n in range(30):
        make_journey(session, name=f"Journey {n:02d}")
    _signed_in(client, session)
    first = client.get("/journeys/").get_data(as_text=True)
    assert "Page 1 of 2 · 30 in all" in first
    second = client.get("/journeys/?page=2").get_data(as_text=True)
    assert "Page 2 of 2" in second
    shown = [f"Journey {n:02d}" for n in range(30) if f"Journey {n:02d}" in second]
    assert len(shown) == 5
    beyond = client.get("/journeys/?page=99").get_data(as_text=True)
    assert "Page 2 of 2" in beyond


def test_demo_data_shows_on_every_page(client, session, settings):
    assert load_demo(session, SecretBox(settings.encryption_key))
    session.commit()
    _signed_in(client, session)
    assert "Cart recovery" in client.get("/journeys/").get_data(as_text=True)
    channels = client.get("/channels/").get_data(as_text=True)
    assert "support-desk" in channels and "whsec_" not in channels
    customers = client.get("/customers/?q=ada@").get_data(as_text=True)
    assert "ada@example.com" in customers and "grace@example.com" not in customers
    # Live journeys by default; the demo's onboarding is a draft.
    overview = client.get("/analytics/").get_data(as_text=True)
    assert "Cart recovery" in overview and "Onboarding across email" not in overview
    drafts = client.get("/analytics/?status=draft").get_data(as_text=True)
    assert "Onboarding across email and app" in drafts


def test_unexpected_errors_show_a_page_without_internals(app, session):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert "secret internals" not in body and "Traceback" not in body
    assert "Something went wrong" in body


def test_unknown_pages_are_404_pages(client, session):
    response = _signed_in(client, session).get("/no-such-page")
    assert response.status_code == 404
    assert "Not Found" in response.get_data(as_text=True)

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from engine import accounts
from engine.models import Role
from tests.conftest import make_settings
from tests.factories import login, make_user


@pytest.fixture
def scraper(client, session):
    """The client, sending a viewer's API token as a Prometheus scraper would."""
    token = accounts.create_token(session, make_user(session, Role.viewer))
    session.commit()
    client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client


def test_healthz_is_200_when_sql_and_redis_answer(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {
        "status": "ok",
        "checks": {"sql": "ok", "redis": "ok"},
    }


def test_healthz_is_503_naming_redis_when_redis_is_down(
    app_factory, tmp_path, database_url
):
    settings = make_settings(
        tmp_path / "home", database_url, f"unix://{tmp_path}/none.sock"
    )
    response = app_factory(settings).test_client().get("/healthz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["sql"] == "ok"
    assert checks["redis"].startswith("unreachable")


def test_healthz_is_503_naming_sql_when_the_database_is_down(
    app_factory, tmp_path, redis_url, redis_client
):
    broken = "postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=1"
    settings = make_settings(tmp_path / "home", broken, redis_url)
    response = app_factory(settings).test_client().get("/healthz")
    assert response.status_code == 503
    checks = response.get_json()["checks"]
    assert checks["sql"].startswith("unreachable")
    assert checks["redis"] == "ok"


def test_metrics_are_prometheus_text_with_requests_and_queues(scraper, redis_client):
    client = scraper
    client.get("/healthz")
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    families = {
        f.name: f
        for f in text_string_to_metric_families(response.get_data(as_text=True))
    }
    requests = families["throughline_http_requests"]
    assert any(
        s.labels.get("endpoint") == "ops.healthz"
        and s.labels["status"] == "200"
        and s.value >= 1
        for s in requests.samples
    )
    assert families["throughline_redis_up"].samples[0].value == 1
    queues = {
        s.labels["queue"]: s.value for s in families["throughline_queue_jobs"].samples
    }
    assert queues == {"events": 0, "deliveries": 0, "default": 0}


def test_metrics_report_the_scheduler_heartbeat(scraper, redis_client):
    client = scraper
    import time

    from engine.scheduler import HEARTBEAT_KEY

    redis_client.set(HEARTBEAT_KEY, f"{time.time() - 3:.3f}")
    text = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    age = families["throughline_scheduler_heartbeat_age_seconds"].samples[0].value
    assert 2.5 < age < 30


def test_metrics_report_backlog_and_timer_lateness(
    scraper, redis_client, engine_runtime, session
):
    client = scraper
    from datetime import timedelta

    from engine.execution import drains
    from engine.models import Run, utcnow
    from tests.world import CART, World, sample

    world = World(client, session, engine_runtime.settings, redis_client, {})
    world.publish(sample())
    world.post(CART)
    for run in session.scalars(select(Run)):
        run.wake_at = utcnow() - timedelta(seconds=3)
    session.commit()
    assert drains.sweep_timers(engine_runtime) == 1
    text = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    lateness = {
        s.labels["quantile"]: s.value
        for s in families["throughline_timer_lateness_seconds"].samples
    }
    assert 2.5 < lateness["1"] < 60
    assert families["throughline_timers_fired"].samples[0].value == 1
    assert families["throughline_event_backlog"].samples[0].value == 0


@pytest.mark.security
def test_metrics_labels_take_only_known_methods_and_endpoints(scraper):
    client = scraper
    for number in range(30):
        client.open("/healthz", method=f"BREW{number}")
        client.get(f"/no-such-page-{number}")
    text = client.get("/metrics").get_data(as_text=True)
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples = families["throughline_http_requests"].samples
    methods = {s.labels["method"] for s in samples}
    assert methods <= {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} | {
        "other"
    }
    assert "other" in methods
    endpoints = {s.labels["endpoint"] for s in samples}
    assert not any("no-such-page" in e or "BREW" in e for e in endpoints)
    assert "unknown" in endpoints


@pytest.mark.security
def test_metrics_need_an_api_token_of_any_role(client, session):
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    bad = client.get("/metrics", headers={"Authorization": "Bearer tl_nonsense"})
    assert bad.status_code == 401
    for role in Role:
        token = accounts.create_token(session, make_user(session, role))
        session.commit()
        answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200, role
        assert "throughline_http_requests" in answer.get_data(as_text=True)


@pytest.mark.security
def test_a_sign_in_session_is_not_enough_for_metrics(client, session):
    login(client, make_user(session, Role.admin))
    assert client.get("/metrics").status_code == 401


def test_metrics_are_open_when_configured_public(
    app_factory, tmp_path, database_url, redis_url, redis_client
):
    settings = make_settings(
        tmp_path / "home", database_url, redis_url, THROUGHLINE_METRICS_PUBLIC="1"
    )
    assert settings.metrics_public
    response = app_factory(settings).test_client().get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"

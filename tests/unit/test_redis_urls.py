"""REDIS_URL forms, the sentinel one read into its parts."""

import pytest

from engine.queues import RedisUrlError, connect


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database():
    client = connect(
        "redis+sentinel://:s%40cret@10.0.0.1:26379,[::1]:26380,sentinel-3"
        "/throughline/2?sentinel_password=watch"
    )
    pool = client.connection_pool
    assert pool.service_name == "throughline"
    assert pool.connection_kwargs["db"] == 2
    assert pool.connection_kwargs["password"] == "s@cret"
    found = [
        (
            s.connection_pool.connection_kwargs["host"],
            s.connection_pool.connection_kwargs["port"],
        )
        for s in pool.sentinel_manager.sentinels
    ]
    assert found == [("10.0.0.1", 26379), ("::1", 26380), ("sentinel-3", 26379)]
    assert {
        s.connection_pool.connection_kwargs["password"]
        for s in pool.sentinel_manager.sentinels
    } == {"watch"}
    client.close()


@pytest.mark.parametrize(
    "url",
    [
        "redis+sentinel://host:port/throughline",
        "redis+sentinel://host:26379/",
        "redis+sentinel://host:26379/throughline/0/extra",
        "redis+sentinel:///throughline",
        "redis+sentinel://host:26379/throughline/zero",
        "redis+sentinel://h1:26379,,h2:26379/throughline",
    ],
)
def test_a_sentinel_url_that_cannot_be_read_says_how_it_reads(url):
    with pytest.raises(RedisUrlError, match="sentinel"):
        connect(url)


def test_rediss_sentinel_speaks_tls_to_the_master_and_the_sentinels():
    client = connect("rediss+sentinel://10.0.0.1:26379/throughline")
    pool = client.connection_pool
    assert pool.connection_class.__name__ == "SentinelManagedSSLConnection"
    (sentinel,) = pool.sentinel_manager.sentinels
    assert sentinel.connection_pool.connection_class.__name__ == "SSLConnection"
    client.close()

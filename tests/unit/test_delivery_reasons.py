"""Why a delivery was not made: one vocabulary for every page."""

from engine.delivery import (
    CHANNEL_REASONS,
    CONSENT,
    FREQUENCY_CAP,
    GLOBAL_HOLDOUT,
    REASON_WORDS,
    reason_words,
)


def test_every_reason_the_engine_records_has_words():
    assert set(REASON_WORDS) == {
        CONSENT,
        FREQUENCY_CAP,
        GLOBAL_HOLDOUT,
        *CHANNEL_REASONS,
    }
    for reason, words in REASON_WORDS.items():
        assert "_" not in words and reason not in words


def test_an_unknown_reason_reads_as_it_was_recorded():
    assert reason_words("breaker_open") == REASON_WORDS["breaker_open"]
    assert reason_words("timed out at the gateway") == "timed out at the gateway"
    assert reason_words(None) == ""

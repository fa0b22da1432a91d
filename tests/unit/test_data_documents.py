"""The sample journey documents in tests/data: each one is read, upgraded, validated, exported
and read again without a change, and together they use every node type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.language import graph, nodes
from engine.language.nodes import CheckContext

DATA = Path(__file__).resolve().parents[1] / "data"
SAMPLES = sorted(DATA.glob("*.json"))
CHANNELS = CheckContext(
    channels=frozenset({"email", "sms", "app", "web", "support-desk"})
)


def test_the_samples_use_every_node_type() -> None:
    used = {
        node["type"]
        for path in SAMPLES
        for node in json.loads(path.read_text())["nodes"]
    }
    assert used == set(nodes.names())


@pytest.mark.parametrize("path", SAMPLES, ids=[p.stem for p in SAMPLES])
def test_a_sample_is_valid_and_survives_export(path: Path) -> None:
    raw = graph.upgrade(json.loads(path.read_text()))
    document, problems = graph.check(raw, CHANNELS)
    assert problems == [] and document is not None
    exported = graph.to_dict(document)
    again = graph.parse(json.loads(json.dumps(exported)))
    assert again == document
    assert graph.to_dict(again) == exported

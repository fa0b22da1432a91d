"""The canvas palette offers every engine node type, each starting with a config it can read."""

from engine.language import nodes
from webapp.designer import palette


def test_the_palette_lists_every_node_type_once():
    assert [item["type"] for item in palette.catalogue()] == list(nodes.names())
    assert set(palette.STARTING_CONFIG) == set(nodes.names())


def test_each_starting_config_gives_the_ports_the_canvas_draws():
    by_type = {item["type"]: item for item in palette.catalogue()}
    assert [p["name"] for p in by_type["condition"]["ports"]] == ["true", "false"]
    assert [p["name"] for p in by_type["split"]["ports"]] == ["a", "b"]
    assert [p["name"] for p in by_type["switch"]["ports"]] == ["vip", "default"]
    assert by_type["exit"]["ports"] == []
    assert all(item["label"] and item["help"] for item in by_type.values())


def test_an_unknown_type_has_no_ports_instead_of_an_error():
    assert palette.ports_of("teleport", {}) == []


def test_a_new_step_says_what_it_does_before_it_is_saved():
    by_type = {item["type"]: item for item in palette.catalogue()}
    assert by_type["wait"]["summary"] == "Wait 1 hour"
    assert by_type["split"]["summary"] == "Split 50% a / 50% b"
    assert by_type["trigger"]["summary"] == "When …"


def test_every_node_type_has_an_icon_in_the_built_sprite():
    import json
    from pathlib import Path

    icons = json.loads(
        (Path(__file__).parents[2] / "scripts" / "icons.json").read_text()
    )
    assert set(icons["nodes"]) == set(nodes.names())

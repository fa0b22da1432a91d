"""A delivery's id, the `webhook-id` of each of its attempts, exists from the moment it is made."""

from __future__ import annotations

from engine.models import Delivery


def test_a_new_delivery_has_its_id_before_it_is_stored() -> None:
    first, second = Delivery(kind="send", payload={}), Delivery(kind="send", payload={})
    assert first.id.startswith("dlv_") and second.id.startswith("dlv_")
    assert first.id != second.id


def test_an_id_given_is_kept() -> None:
    assert Delivery(id="dlv_given", kind="send", payload={}).id == "dlv_given"

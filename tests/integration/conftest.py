"""Fixtures of the engine tests' small world (tests/world.py)."""

from tests.world import recorders, world  # noqa: F401

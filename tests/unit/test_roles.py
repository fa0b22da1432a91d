import pytest

from engine.models import Role


@pytest.mark.parametrize(
    ("have", "need", "allowed"),
    [
        (Role.admin, Role.marketer, True),
        (Role.admin, Role.viewer, True),
        (Role.marketer, Role.marketer, True),
        (Role.marketer, Role.admin, False),
        (Role.viewer, Role.marketer, False),
        (Role.viewer, Role.viewer, True),
    ],
)
def test_each_role_includes_the_ones_below_it(have, need, allowed):
    assert have.includes(need) is allowed

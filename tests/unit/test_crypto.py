import pytest
from cryptography.fernet import Fernet

from engine.crypto import SecretBox


def test_round_trip_never_stores_the_clear_text():
    box = SecretBox(Fernet.generate_key().decode())
    sealed = box.encrypt("whsec_abc")
    assert "whsec_abc" not in sealed
    assert box.decrypt(sealed) == "whsec_abc"


def test_a_rotated_key_still_opens_old_secrets():
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed = SecretBox(old).encrypt("whsec_old")
    assert SecretBox(f"{new},{old}").decrypt(sealed) == "whsec_old"


def test_a_wrong_key_is_a_clear_error():
    sealed = SecretBox(Fernet.generate_key().decode()).encrypt("x")
    with pytest.raises(ValueError, match="THROUGHLINE_ENCRYPTION_KEY"):
        SecretBox(Fernet.generate_key().decode()).decrypt(sealed)

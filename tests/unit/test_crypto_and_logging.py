"""Token encryption with key rotation, and the log redaction processor."""

from __future__ import annotations

import pytest

from worker.crypto import TokenCipher, new_key
from worker.logging import REDACTED, redact_secrets


def test_token_written_under_old_key_decrypts_after_new_key_is_put_first() -> None:
    old, new = new_key(), new_key()
    stored = TokenCipher([old]).encrypt("refresh-abc")
    rotated_cipher = TokenCipher([new, old])
    assert rotated_cipher.decrypt(stored) == "refresh-abc"
    rotated = rotated_cipher.rotate(stored)
    assert TokenCipher([new]).decrypt(rotated) == "refresh-abc"
    with pytest.raises(ValueError):
        TokenCipher([new]).decrypt(stored)


def test_ciphertext_does_not_contain_plaintext() -> None:
    assert "refresh-abc" not in TokenCipher([new_key()]).encrypt("refresh-abc")


def test_redaction_blanks_secret_fields_and_bearer_text() -> None:
    event = {
        "event": "x",
        "refresh_token": "r1",
        "headers": {"Authorization": "Bearer abc.def", "X-Other": "ok"},
        "msg": "call failed with Bearer eyJhbGci.x.y and client_secret=shh&z=1",
        "nested": [{"client_state": "cs"}],
    }
    out = redact_secrets(None, "info", dict(event))
    assert out["refresh_token"] == REDACTED
    assert out["headers"]["Authorization"] == REDACTED and out["headers"]["X-Other"] == "ok"
    assert "eyJhbGci" not in out["msg"] and "shh" not in out["msg"] and "z=1" in out["msg"]
    assert out["nested"][0]["client_state"] == REDACTED

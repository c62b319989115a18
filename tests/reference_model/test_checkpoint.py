"""Generator checkpoints: what a damaged or mismatched one is refused with, in one line each."""
import json

import pytest

from reference_model.checkpoint import load_generator, sidecar_path, verified_card
from reference_model.errors import InputError


def _refusal(path) -> str:
    with pytest.raises(InputError) as refused:
        load_generator(path)
    message = str(refused.value)
    assert "\n" not in message and message.startswith(str(path))
    return message


def test_an_intact_checkpoint_loads_and_its_card_is_verified(checkpoint_copy):
    spec, _ = load_generator(checkpoint_copy)
    assert spec.benchmark == "3dgan" == verified_card(checkpoint_copy)["benchmark"]


def test_truncated_weights_are_refused_by_their_hash(checkpoint_copy):
    checkpoint_copy.write_bytes(checkpoint_copy.read_bytes()[:100_000])
    assert "does not match the recorded" in _refusal(checkpoint_copy)
    with pytest.raises(InputError, match="the file is corrupt or was changed"):
        verified_card(checkpoint_copy)


def test_a_missing_or_corrupt_sidecar_is_named(checkpoint_copy):
    card = sidecar_path(checkpoint_copy)
    card.write_text("{not json")
    with pytest.raises(InputError, match=r"corrupt checkpoint sidecar"):
        load_generator(checkpoint_copy)
    card.unlink()
    assert "sidecar" in _refusal(checkpoint_copy) and "re-export" in _refusal(checkpoint_copy)


def test_weights_recorded_for_another_architecture_are_refused(checkpoint_copy):
    card = sidecar_path(checkpoint_copy)
    card.write_text(json.dumps({**json.loads(card.read_text()), "fingerprint": "0" * 64}))
    assert "trained for a different architecture" in _refusal(checkpoint_copy)

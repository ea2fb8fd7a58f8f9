"""The zipformer encoder kind: our Zipformer2 against icefall's (the PyPI package), and its strict loading."""

from __future__ import annotations

import json
import logging
import types

import pytest
import torch
from safetensors.torch import save_file

from azeros.audio import fbank_batch
from azeros.models.encoders import ZipformerEncoder, build_encoder
from azeros.models.encoders._zipformer2 import ZipformerConfig
from tests.conftest import TINY_ZIPFORMER, noise
from tests.models.zipformer_oracle import OracleZipformer, randomize

# 77/125/49/101 fbank frames: 35/59/21/47 frames at 50 Hz, odd and even at every stack's rate.
SECONDS = [0.77, 1.25, 0.49, 1.01]
# Keys of an Auden config.json that only shape training.
AUDEN_TRAINING_KEYS = dict(
    model_type="zipformer", warmup_batches=4000.0, dropout=None, encoder_unmasked_dim=[16, 16, 16, 16],
    chunk_size=[16, 32, 64, -1], left_context_frames=[64, 128, 256, -1],
)


def random_oracle(config: ZipformerConfig, seed: int = 0) -> OracleZipformer:
    oracle = OracleZipformer(config)
    randomize(oracle, seed)
    return oracle


def save_encoder_folder(folder, oracle: OracleZipformer, config: dict, weights: str = "model.safetensors"):
    """An encoder folder as Auden writes it: config.json and the weights with ``model_batch_count``."""
    folder.mkdir(exist_ok=True)
    (folder / "config.json").write_text(json.dumps({**AUDEN_TRAINING_KEYS, "feature_dim": 80, **config}))
    state = {**oracle.state_dict(), "model_batch_count": torch.tensor(123456.0)}
    save_file(state, folder / weights)
    return folder


def assert_equals_oracle_alone(frames, lengths, oracle, waves):
    """Our padded batch against the oracle run on each utterance alone, where no padding can reach it."""
    feats, feat_lengths = fbank_batch(waves)
    feats = feats.to(frames.dtype)
    for i in range(len(waves)):
        alone, n = oracle(feats[i : i + 1, : feat_lengths[i]], feat_lengths[i : i + 1])
        assert lengths[i] == n[0]
        torch.testing.assert_close(frames[i, : lengths[i]], alone[0], atol=1e-5, rtol=0)
        assert frames[i, lengths[i] :].abs().sum() == 0


def test_matches_icefall_zipformer2_loaded_from_an_auden_folder(tmp_path):
    oracle = random_oracle(ZipformerConfig.from_dict(TINY_ZIPFORMER)).double()
    folder = save_encoder_folder(tmp_path / "encoder", oracle, TINY_ZIPFORMER)
    # float64: rounding stays near 1e-14, so anything above 1e-5 is a difference in the computation itself
    encoder = build_encoder("zipformer", path=str(folder)).double()
    waves = [noise(s, seed=i) for i, s in enumerate(SECONDS)]
    frames, lengths = encoder(waves)  # [b, t, 32]
    assert frames.shape == (4, max(lengths), 32)
    assert lengths.tolist() == [encoder.num_frames(w.size) for w in waves]
    assert_equals_oracle_alone(frames, lengths, oracle, waves)
    # The reference itself lets padding into the shorter utterances of this batch, so the comparison above
    # would catch a leak of ours.
    feats, feat_lengths = fbank_batch(waves)
    in_batch, _ = oracle(feats.double(), feat_lengths)
    alone, n = oracle(feats[2:3, : feat_lengths[2]].double(), feat_lengths[2:3])
    assert (in_batch[2, : n[0]] - alone[0]).abs().max() > 1e-3


@pytest.mark.slow
def test_matches_icefall_zipformer2_at_the_large_preset():
    config = ZipformerConfig()  # TTA's and Auden-Voice's shapes, 153M parameters
    oracle = random_oracle(config).double()
    encoder = ZipformerEncoder(config=config)
    encoder.model.load_state_dict(oracle.state_dict(), strict=True)
    encoder.double()
    waves = [noise(0.61, seed=1), noise(1.03, seed=2)]
    frames, lengths = encoder(waves)
    assert frames.shape[-1] == encoder.dim == 768
    assert_equals_oracle_alone(frames, lengths, oracle, waves)


def test_frames_and_lengths_follow_the_reference_arithmetic():
    encoder = ZipformerEncoder(config=TINY_ZIPFORMER)
    # the reference's example: 10 s -> 1000 fbank frames -> (1000 - 7) // 2 = 496 -> (496 + 1) // 2 = 248
    assert encoder.num_frames(10 * 16000) == 248
    assert encoder.num_frames(1360) == 1  # 9 fbank frames, the fewest that make a frame
    with pytest.raises(ValueError, match="too short"):
        encoder([noise(0.05)])
    assert encoder.frame_rate == 25.0 and encoder.dim == 32
    encoder.train()
    assert not any(m.training for m in encoder.modules())
    assert not any(p.requires_grad for p in encoder.parameters())
    assert ZipformerConfig.from_dict({}).encoder_dim == (192, 256, 512, 768, 512, 256)  # the large preset


@pytest.mark.parametrize(
    ("wrap", "name"),
    [
        (lambda s: {"state_dict": {**{f"speech_encoder.{k}": v for k, v in s.items()},
                                   "speech_encoder_projector.linear1.weight": torch.zeros(2, 2)}}, "pretrained.pt"),
        (lambda s: {"model": {f"module.{k}": v for k, v in s.items()}}, "model.pt"),
    ],
    ids=["auden-composite", "ddp-icefall"],
)
def test_loads_weights_under_a_parent_prefix(tmp_path, wrap, name):
    oracle = random_oracle(ZipformerConfig.from_dict(TINY_ZIPFORMER), seed=1)
    (tmp_path / "config.json").write_text(json.dumps(TINY_ZIPFORMER))
    torch.save(wrap({**oracle.state_dict(), "model_batch_count": torch.tensor(5.0)}), tmp_path / name)
    for path in (tmp_path, tmp_path / name):  # the folder or the file itself
        encoder = ZipformerEncoder(str(path))
        for key, value in oracle.state_dict().items():
            assert torch.equal(encoder.model.state_dict()[key], value), key


def test_a_missing_or_unexpected_weight_is_an_error_that_names_it(tmp_path):
    oracle = random_oracle(ZipformerConfig.from_dict(TINY_ZIPFORMER))
    state = oracle.state_dict()
    (tmp_path / "config.json").write_text(json.dumps(TINY_ZIPFORMER))

    def load(weights):
        save_file(weights, tmp_path / "model.safetensors")
        return ZipformerEncoder(str(tmp_path))

    missing = {k: v for k, v in state.items() if k != "encoder.encoders.1.out_combiner.bypass_scale"}
    with pytest.raises(ValueError, match=r"1 missing: encoder\.encoders\.1\.out_combiner\.bypass_scale"):
        load(missing)
    with pytest.raises(ValueError, match=r"1 unexpected: encoder\.extra"):
        load({**state, "encoder.extra": torch.zeros(1)})
    with pytest.raises(ValueError, match="do not fit config.json"):
        load({**state, "encoder.downsample_output.bias": torch.zeros(3)})
    two = {**{f"speech_encoder.{k}": v for k, v in state.items()}, **{f"paraling_encoder.{k}": v.clone() for k, v in state.items()}}
    with pytest.raises(ValueError, match="found prefixes: 'paraling_encoder.', 'speech_encoder.'"):
        load(two)


def test_config_fields_are_checked(caplog):
    with caplog.at_level(logging.WARNING):
        ZipformerConfig.from_dict({**AUDEN_TRAINING_KEYS, **TINY_ZIPFORMER, "new_knob": 1})
    assert "ignoring unknown keys new_knob" in caplog.text and "dropout" not in caplog.text
    with pytest.raises(ValueError, match="not a zipformer config"):
        ZipformerConfig.from_dict({"model_type": "whisper"})
    with pytest.raises(ValueError, match="causal"):
        ZipformerConfig.from_dict({**TINY_ZIPFORMER, "causal": True})
    with pytest.raises(ValueError, match="num_heads has 3 values for 4 stacks"):
        ZipformerConfig.from_dict({**TINY_ZIPFORMER, "num_heads": [2, 2, 2]})
    with pytest.raises(ValueError, match="feature_dim 40"):
        ZipformerEncoder(config={**TINY_ZIPFORMER, "feature_dim": 40})
    assert ZipformerConfig.from_dict(TINY_ZIPFORMER).query_head_dim == (4, 4, 4, 4)  # one value, every stack


def test_the_oracle_survives_its_rare_attention_entropy_log(monkeypatch):
    """In eval mode icefall's attention logs its entropy on one call in a thousand, under the package's
    ``torch_autocast(enabled=False)``: the oracle's stand-in for it must take the same arguments (a
    ``torch.amp.autocast`` without a device type made the parity tests fail about once in thirty runs)."""
    oracle = random_oracle(ZipformerConfig.from_dict(TINY_ZIPFORMER))
    package_globals = type(oracle.encoder).forward.__globals__  # the package's zipformer.py
    monkeypatch.setitem(package_globals, "random", types.SimpleNamespace(random=lambda: 0.0))
    feats, feat_lengths = fbank_batch([noise(0.49)])
    frames, _ = oracle(feats, feat_lengths)
    assert frames.isfinite().all()

"""Tests for azeros.audio: loading/validation errors, resampling, and feature parity."""

from __future__ import annotations

import io
import pickle
import re

import numpy as np
import pytest
import soundfile as sf
import soxr
import torch

from azeros.audio import (
    SAMPLE_RATE,
    AudioError,
    FBANK_PAD_VALUE,
    AudioLimits,
    fbank,
    fbank_batch,
    fbank_num_frames,
    load_audio,
    validate_waveform,
    whisper_log_mel,
    whisper_num_frames,
)


def _noise(
    seconds: float, rate: int = SAMPLE_RATE, seed: int = 0, scale: float = 0.3
) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (scale * rng.standard_normal(int(round(seconds * rate)))).clip(-1, 1).astype(np.float32)


def _write(path, wave, rate=SAMPLE_RATE, **kwargs):
    sf.write(path, wave, rate, **kwargs)
    return path


# --- errors -----------------------------------------------------------------


def test_missing_file_names_path(tmp_path):
    path = tmp_path / "nowhere.wav"
    with pytest.raises(AudioError, match="not found") as info:
        load_audio(path)
    assert "nowhere.wav" in str(info.value)
    assert info.value.source == str(path)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "zero.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError) as info:
        load_audio(path)
    message = str(info.value)
    assert "zero.wav" in message
    assert "empty" in message or "unreadable" in message


def test_wav_with_no_samples_is_empty(tmp_path):
    path = _write(tmp_path / "nosamples.wav", np.zeros(0, dtype=np.float32))
    with pytest.raises(AudioError, match="empty") as info:
        load_audio(path)
    assert "nosamples.wav" in str(info.value)


def test_too_short(tmp_path):
    path = _write(tmp_path / "blip.wav", _noise(0.01))
    with pytest.raises(AudioError, match="too short") as info:
        load_audio(path)
    assert "blip.wav" in str(info.value)
    assert "0.010 s" in str(info.value)


def test_too_long_says_duration(tmp_path):
    path = _write(tmp_path / "lecture.flac", _noise(45.0, scale=0.1))
    with pytest.raises(AudioError, match="too long") as info:
        load_audio(path)
    message = str(info.value)
    assert "lecture.flac" in message
    assert "45" in message
    assert "30" in message  # the limit


def test_silent(tmp_path):
    path = _write(tmp_path / "quiet.wav", np.zeros(2 * SAMPLE_RATE, dtype=np.float32))
    with pytest.raises(AudioError, match="silent") as info:
        load_audio(path)
    assert "quiet.wav" in str(info.value)


def test_silence_threshold_is_inclusive():
    limits = AudioLimits(silence_peak=0.01)
    wave = np.full(SAMPLE_RATE, 0.01, dtype=np.float32)
    with pytest.raises(AudioError, match="silent"):
        validate_waveform(wave, name="cut-1", limits=limits)
    validate_waveform(wave * 2, name="cut-1", limits=limits)


def test_nan_in_float_wav(tmp_path):
    wave = _noise(1.0)
    wave[100] = np.nan
    path = _write(tmp_path / "broken.wav", wave, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN") as info:
        load_audio(path)
    assert "broken.wav" in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_array_names_given_name(bad):
    wave = _noise(1.0)
    wave[5] = bad
    with pytest.raises(AudioError, match="NaN" if np.isnan(bad) else "Inf") as info:
        load_audio((wave, SAMPLE_RATE), name="cut-0042")
    assert str(info.value).startswith("cut-0042: ")
    assert info.value.source == "cut-0042"


def test_text_file_named_wav_is_audio_error(tmp_path):
    path = tmp_path / "speech.wav"
    path.write_text("this is not audio, just some text\n" * 20)
    with pytest.raises(AudioError, match="unreadable") as info:
        load_audio(path)
    assert str(info.value).startswith(f"{path}: ")
    # Wrapped, not leaked: the original libsndfile error is the cause.
    assert isinstance(info.value.__cause__, sf.SoundFileError)


def test_truncated_header_is_audio_error(tmp_path):
    good = _write(tmp_path / "good.wav", _noise(1.0))
    path = tmp_path / "cut_short.wav"
    path.write_bytes(good.read_bytes()[:20])
    with pytest.raises(AudioError, match="unreadable") as info:
        load_audio(path)
    assert "cut_short.wav" in str(info.value)


def test_garbage_bytes_use_given_name():
    with pytest.raises(AudioError, match="unreadable") as info:
        load_audio(b"RIFF....garbage", name="upload-7")
    assert str(info.value).startswith("upload-7: ")


def test_name_overrides_path_in_messages(tmp_path):
    path = _write(tmp_path / "x.wav", np.zeros(SAMPLE_RATE, dtype=np.float32))
    with pytest.raises(AudioError, match=r"^utt-9: silent"):
        load_audio(path, name="utt-9")


def test_audio_error_is_value_error_and_pickles():
    error = AudioError("a.wav", "silent")
    assert isinstance(error, ValueError)
    clone = pickle.loads(pickle.dumps(error))
    assert (clone.source, clone.reason, str(clone)) == ("a.wav", "silent", "a.wav: silent")


def test_custom_limits(tmp_path):
    path = _write(tmp_path / "two.wav", _noise(2.0))
    with pytest.raises(AudioError, match="too long"):
        load_audio(path, limits=AudioLimits(max_seconds=1.5))
    with pytest.raises(AudioError, match="too short"):
        load_audio(path, limits=AudioLimits(min_seconds=2.5))


def _silence_flac(seconds: float, rate: int = 48000, channels: int = 8) -> bytes:
    """A few KB of FLAC that decode to ``seconds`` of multichannel silence (a decode bomb)."""
    buffer = io.BytesIO()
    with sf.SoundFile(buffer, "w", rate, channels, format="FLAC", subtype="PCM_16") as sound:
        for _ in range(int(seconds)):
            sound.write(np.zeros((rate, channels), np.int16))
    return buffer.getvalue()


@pytest.fixture
def no_decoding(monkeypatch):
    """Fails any attempt to decode samples: what is refused must be refused from the header alone."""

    def refuse(*args, **kwargs):
        raise AssertionError("samples were decoded")

    monkeypatch.setattr(sf.SoundFile, "read", refuse)
    monkeypatch.setattr(sf.SoundFile, "blocks", refuse)


@pytest.mark.parametrize(
    ("rate", "channels", "seconds", "reason"),
    [
        (48000, 8, 40, "too long (40.00 s > maximum 30 s)"),
        (8, 1, 2000, "unsupported sample rate 8 Hz"),
        (16000, 17, 1, "too many channels (17 > maximum 16)"),
    ],
)
def test_header_is_checked_before_decoding(no_decoding, tmp_path, rate, channels, seconds, reason):
    path = tmp_path / "bomb.wav"
    with sf.SoundFile(path, "w", rate, channels, subtype="PCM_16") as sound:
        sound.write(np.zeros((int(rate * seconds), channels), np.int16))
    for source in (path, path.read_bytes()):
        with pytest.raises(AudioError, match=re.escape(reason)):
            load_audio(source, name="upload")


def test_flac_decode_bomb_is_refused_from_its_header(no_decoding):
    bomb = _silence_flac(40)
    assert len(bomb) < 100_000  # 40 s of 8-channel 48 kHz silence, as FLAC
    with pytest.raises(AudioError, match=re.escape("too long (40.00 s > maximum 30 s)")):
        load_audio(bomb)


def test_array_rate_is_checked_before_resampling():
    with pytest.raises(AudioError, match="unsupported sample rate 8 Hz"):
        load_audio((_noise(1.0, rate=8), 8))
    with pytest.raises(AudioError, match=re.escape("too long (40.00 s > maximum 30 s)")):
        load_audio((_noise(40.0, rate=8000), 8000))


def test_validate_rejects_multichannel():
    with pytest.raises(AudioError, match="mono") as info:
        validate_waveform(np.zeros((100, 2), dtype=np.float32), name="cut-3")
    assert "cut-3" in str(info.value)


# --- successful loads ----------------------------------------------------------


def test_8k_stereo_is_mixed_and_resampled(tmp_path):
    rate = 8000
    t = np.arange(2 * rate) / rate
    left = 0.5 * np.sin(2 * np.pi * 440 * t)
    right = 0.3 * np.sin(2 * np.pi * 1000 * t + 0.5)
    stereo = np.stack([left, right], axis=1).astype(np.float32)  # [samples, 2]
    path = _write(tmp_path / "phone.wav", stereo, rate=rate, subtype="FLOAT")

    wave = load_audio(path)

    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - 32000) <= 1
    expected = soxr.resample(stereo.mean(axis=1), rate, SAMPLE_RATE, quality="HQ")
    n = min(wave.size, expected.size)
    assert np.corrcoef(wave[:n], expected[:n])[0, 1] > 0.99
    # A single channel alone would not match the mix.
    only_left = soxr.resample(stereo[:, 0], rate, SAMPLE_RATE, quality="HQ")
    assert np.corrcoef(wave[:n], only_left[:n])[0, 1] < 0.95


def test_16k_mono_is_returned_unchanged(tmp_path):
    original = _noise(1.0)
    path = _write(tmp_path / "clean.wav", original, subtype="FLOAT")
    np.testing.assert_array_equal(load_audio(path), original)


@pytest.mark.parametrize("fmt", ["WAV", "FLAC"])
def test_bytes_match_path(tmp_path, fmt):
    path = _write(tmp_path / f"clip.{fmt.lower()}", _noise(1.5, rate=22050), rate=22050, format=fmt)
    from_path = load_audio(path)
    from_bytes = load_audio(path.read_bytes())
    np.testing.assert_array_equal(from_bytes, from_path)
    assert from_path.size == 24000


def test_int16_array_is_scaled():
    pcm = (np.round(_noise(1.0) * 32767)).astype(np.int16)
    wave = load_audio((pcm, SAMPLE_RATE))
    assert wave.dtype == np.float32
    np.testing.assert_allclose(wave, pcm.astype(np.float32) / 32768, rtol=0, atol=1e-7)
    assert np.abs(wave).max() <= 1.0


def test_int_array_full_scale_maps_to_minus_one():
    pcm = np.zeros(SAMPLE_RATE, dtype=np.int16)
    pcm[0] = -32768
    assert load_audio((pcm, SAMPLE_RATE))[0] == -1.0


def test_channels_last_array_is_mixed():
    a, b = _noise(1.0, seed=1), _noise(1.0, seed=2)
    wave = load_audio((np.stack([a, b], axis=1), SAMPLE_RATE))  # [samples, 2]
    np.testing.assert_allclose(wave, np.clip((a + b) / 2, -1, 1), atol=1e-7)


def test_channels_first_array_is_rejected():
    with pytest.raises(AudioError, match="channels-first"):
        load_audio((np.zeros((2, SAMPLE_RATE), dtype=np.float32), SAMPLE_RATE), name="cf")


def test_output_stays_within_full_scale_after_resampling():
    # A full-scale square wave rings past +-1 when resampled.
    square = np.sign(np.sin(2 * np.pi * 50 * np.arange(44100) / 44100)).astype(np.float32)
    wave = load_audio((square, 44100))
    assert np.abs(wave).max() <= 1.0


# --- fbank ------------------------------------------------------------------------


def _fbank_test_waves() -> list[np.ndarray]:
    """Noise, a pure tone (weak bins far from it), digital silence (the floor) and the shortest waves."""
    tone = 0.5 * np.sin(np.arange(33333) * 0.05).astype(np.float32)
    silence_then_noise = np.concatenate([np.zeros(8000, np.float32), _noise(0.8, seed=5, scale=0.05)])
    return [_noise(1.3, seed=3, scale=0.2), tone, silence_then_noise, _noise(0.03, seed=6), _noise(140 / SAMPLE_RATE, seed=7)]


def test_fbank_matches_lhotse():
    # The reference computes its features with lhotse's Fbank at its defaults (80 bins).
    from lhotse.features.kaldi.extractors import Fbank, FbankConfig

    reference = Fbank(FbankConfig(num_mel_bins=80))
    for wave in _fbank_test_waves():
        ours = fbank(wave)  # [frames, 80]
        expected = reference.extract(wave, SAMPLE_RATE)
        assert ours.dtype == np.float32
        assert ours.shape == expected.shape == (fbank_num_frames(wave.size), 80)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=1e-4)


def test_fbank_batch_is_each_utterance_alone_then_padded():
    waves = _fbank_test_waves()
    feats, lengths = fbank_batch(waves)  # [b, t, 80], [b]
    assert lengths.tolist() == [fbank_num_frames(w.size) for w in waves]
    assert feats.shape == (len(waves), max(lengths), 80) and feats.dtype == torch.float32
    for row, wave in enumerate(waves):
        n = int(lengths[row])
        np.testing.assert_allclose(feats[row, :n].numpy(), fbank(wave), rtol=0, atol=1e-4)
        assert (feats[row, n:] == FBANK_PAD_VALUE).all()
    assert FBANK_PAD_VALUE == pytest.approx(np.log(1e-10))  # lhotse's padding, as the reference's batches


def test_fbank_is_deterministic():
    # dither would make the features random; our settings turn it off.
    wave = _noise(0.5, seed=4)
    np.testing.assert_array_equal(fbank(wave), fbank(wave))


def test_fbank_num_frames_matches_output():
    rng = np.random.default_rng(5)
    lengths = list(range(1, 80)) + list(range(140, 400)) + [1599, 1600, 1601, 1680, 1681, 16000, 20800]
    for n in lengths:
        wave = rng.uniform(-0.5, 0.5, n).astype(np.float32)
        assert fbank(wave).shape == (fbank_num_frames(n), 80), n


def test_fbank_num_frames_rounds_half_up():
    assert [fbank_num_frames(n) for n in (0, 79, 80, 159, 160, 239, 240)] == [0, 0, 1, 1, 1, 1, 2]


def test_fbank_of_empty_wave():
    assert fbank(np.zeros(0, dtype=np.float32)).shape == (0, 80)


def test_fbank_refuses_a_frame_it_cannot_reflect():
    with pytest.raises(ValueError, match="at least 140 samples"):
        fbank(np.zeros(139, dtype=np.float32))


# --- Whisper log-mel ---------------------------------------------------------------


def _speech_like(seconds: float, seed: int) -> np.ndarray:
    # Noise bursts with quiet gaps, so the "max - 8" floor is exercised.
    wave = _noise(seconds, seed=seed, scale=0.2)
    envelope = (np.sin(np.linspace(0, 20 * np.pi, wave.size)) > 0).astype(np.float32)
    return wave * np.maximum(envelope, 1e-6)


@pytest.mark.parametrize("n_mels", [80, 128])
def test_whisper_log_mel_matches_transformers_at_30s(n_mels):
    from transformers import WhisperFeatureExtractor

    wave = _speech_like(30.0, seed=6)
    ours = whisper_log_mel(wave, n_mels=n_mels)  # [n_mels, 3000]
    extractor = WhisperFeatureExtractor(feature_size=n_mels)
    reference = extractor(wave, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features[0]
    assert ours.dtype == np.float32
    assert ours.shape == reference.shape == (n_mels, 3000)
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-4)


@pytest.mark.parametrize("n", [201, 1600, 16000, 16159, 16160, 23456])
def test_whisper_num_frames_matches_output(n):
    wave = _noise(n / SAMPLE_RATE, seed=n)
    assert wave.size == n
    assert whisper_log_mel(wave).shape == (80, whisper_num_frames(n)) == (80, n // 160)


def test_whisper_log_mel_short_utterance_matches_padded_reference():
    # Zero-padding to 30 s only adds low-energy frames, so the reference's maximum
    # (and thus its normalisation) is this utterance's own; away from the end
    # boundary the unpadded features must agree with it.
    from transformers import WhisperFeatureExtractor

    wave = _speech_like(4.0, seed=7)
    ours = whisper_log_mel(wave)  # [80, 400]
    reference = WhisperFeatureExtractor()(wave, sampling_rate=SAMPLE_RATE, return_tensors="np")
    reference = reference.input_features[0]  # [80, 3000]
    frames = whisper_num_frames(wave.size)
    np.testing.assert_allclose(ours[:, :-2], reference[:, : frames - 2], rtol=0, atol=1e-4)


def test_whisper_log_mel_rejects_too_short():
    with pytest.raises(ValueError, match="200"):
        whisper_log_mel(np.ones(200, dtype=np.float32))

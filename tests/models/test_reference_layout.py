"""A model folder in the reference's layout (the released AZEROS model's): tiny random parts written the way
the reference writes them, loaded strictly, answering, and written back the same."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from azeros.cli import main
from azeros.errors import ConfigError
from azeros.eval import build_systems
from azeros.eval.task import EvalItem
from azeros.inference import ChatSession, GenerationParams, generate
from azeros.llm import load_tokenizer
from azeros.models import load_model, save_model
from azeros.models.batch import render
from azeros.models.encoders import ZipformerEncoder
from azeros.models.encoders._zipformer2 import ZipformerConfig
from tests.conftest import TINY_ZIPFORMER, noise, question, tiny_llm, tiny_speech_llm

PROJECTORS = ("speech_encoder_projector", "paraling_encoder_projector")
PARAMS = GenerationParams(max_new_tokens=8)


def write_reference_folder(folder: Path, weights: str = "pretrained.pt") -> Path:
    """The reference's layout: config.json, the tokenizer with <|AUDIO|>, llm/, two Zipformer folders, and the
    projectors under the reference's names (a .pt file wraps them in {"state_dict": ...})."""
    folder.mkdir()
    tokenizer = load_tokenizer("smollm2-135m-instruct")  # ChatML with a default system prompt, as Qwen2.5's
    tokenizer.add_special_tokens({"additional_special_tokens": ["<|AUDIO|>"]})
    tokenizer.save_pretrained(folder)
    llm = tiny_llm("qwen2", len(tokenizer))
    llm.save_pretrained(folder / "llm")
    encoder_config = {"model_type": "zipformer", "feature_dim": 80, **TINY_ZIPFORMER}
    for seed, name in enumerate(("speech_encoder", "paraling_encoder")):
        (folder / name).mkdir()
        (folder / name / "config.json").write_text(json.dumps(encoder_config))
        state = ZipformerEncoder(config=TINY_ZIPFORMER, seed=seed).model.state_dict()
        save_file({**state, "model_batch_count": torch.tensor(20000.0 + seed)}, folder / name / "model.safetensors")
    generator = torch.Generator().manual_seed(0)
    width, stacked = llm.config.hidden_size, 4 * max(TINY_ZIPFORMER["encoder_dim"])
    projectors = {}
    for name in PROJECTORS:
        for layer, shape in (("linear1", (width, stacked)), ("linear2", (width, width))):
            projectors[f"{name}.{layer}.weight"] = 0.5 * torch.randn(shape, generator=generator)
            projectors[f"{name}.{layer}.bias"] = 0.5 * torch.randn(shape[0], generator=generator)
    if weights.endswith(".pt"):
        torch.save({"state_dict": projectors}, folder / weights)
    else:
        save_file(projectors, folder / weights)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "azeros", "use_flash_attn": False,
        "exclude_from_checkpoint": ["llm", "speech_encoder", "paraling_encoder"],
        "speech_encoder_projector_ds_rate": 4, "paraling_encoder_projector_ds_rate": 4,
        "speech_encoder_config": encoder_config, "paraling_encoder_config": encoder_config,
        "llm_config": llm.config.to_diff_dict(), "transformers_version": "4.56.1", "a_later_key": 1,
    }))
    return folder


@pytest.fixture(scope="module")
def reference_folder(tmp_path_factory) -> Path:
    return write_reference_folder(tmp_path_factory.mktemp("released") / "azeros")


def tensors(folder: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a folder's weight files, keyed by encoder folder and name (projectors: top level)."""
    found = {}
    for file in sorted(folder.rglob("*.safetensors")) + sorted(folder.glob("*.pt")):
        state = load_file(file) if file.suffix == ".safetensors" else torch.load(file, weights_only=True)["state_dict"]
        where = "" if file.parent == folder else f"{file.parent.name}/"
        found.update({f"{where}{key}": value for key, value in state.items()})
    return found


def test_a_reference_folder_loads_strictly_and_answers_a_batch_as_one_at_a_time(reference_folder):
    model = load_model(reference_folder)
    assert [(role, enc.kind) for role, enc in model.encoders.items()] == [("semantic", "zipformer"), ("paralinguistic", "zipformer")]
    written = tensors(reference_folder)
    for role, name in (("semantic", "speech_encoder"), ("paralinguistic", "paraling_encoder")):
        for key, value in model.projectors[role].state_dict().items():
            assert torch.equal(value, written[f"{name}_projector.{key}"])
        for key, value in model.encoders[role].model.state_dict().items():
            assert torch.equal(value, written[f"{name}/{key}"])
    waves = [noise(s, seed=i) for i, s in enumerate((1.3, 0.7, 1.0))]
    together = generate(model, [(w, 16000) for w in waves], params=PARAMS)
    alone = [generate(model, [(w, 16000)], params=PARAMS)[0] for w in waves]
    assert [a.token_ids for a in together] == [a.token_ids for a in alone]
    assert all(a.token_ids for a in together)


def test_the_prompt_is_the_references_training_context_and_its_inference_one_is_a_switch(reference_folder, tmp_path):
    model = load_model(reference_folder)
    chat = render(model, question(model), [16000])
    positions = model.audio_positions(16000)
    heard = set()
    for span in chat.audio_spans:
        heard.update(range(span.start, span.start + span.length))
    text = model.tokenizer.decode([t for i, t in enumerate(chat.input_ids) if i not in heard])
    # <meta> is the paralinguistic encoder (Auden-Voice), <text> the semantic one (TTA); no system turn
    assert text == "<|im_start|>user\n<audio><meta></meta><text></text></audio><|im_end|>\n<|im_start|>assistant\n"
    assert [(s.encoder, s.length) for s in chat.audio_spans] == [
        ("paralinguistic", positions["paralinguistic"]), ("semantic", positions["semantic"])]
    assert positions["semantic"] == 23 // 4  # 1 s: 100 fbank frames -> 46 -> 23 at 25 Hz -> 5 positions (k=4)

    config = json.loads((reference_folder / "config.json").read_text())
    copy = _linked_copy(reference_folder, tmp_path / "with-default-system")
    (copy / "config.json").unlink()
    (copy / "config.json").write_text(json.dumps({**config, "chat_template": None}))
    qwen_like = load_model(copy)
    chat = render(qwen_like, question(qwen_like), [16000])
    assert qwen_like.tokenizer.decode(chat.input_ids[:3]).startswith("<|im_start|>system\n")


def _linked_copy(source: Path, target: Path) -> Path:
    """A folder whose entries link to ``source``'s, so that one file of it can be replaced."""
    target.mkdir()
    for entry in source.iterdir():
        (target / entry.name).symlink_to(entry)
    return target


def test_saving_in_the_reference_layout_writes_the_same_folder_back(reference_folder, tmp_path):
    model = load_model(reference_folder)
    out = save_model(model, tmp_path / "again", layout="reference")
    before, after = tensors(reference_folder), tensors(out)
    assert sorted(before) == sorted(after)
    for key, value in before.items():
        assert value.dtype == after[key].dtype and value.shape == after[key].shape, key
        assert value.numpy().tobytes() == after[key].numpy().tobytes(), key  # byte-equal
    config, again = (json.loads((f / "config.json").read_text()) for f in (reference_folder, out))
    for key in ("model_type", "use_flash_attn", "exclude_from_checkpoint", "speech_encoder_projector_ds_rate",
                "paraling_encoder_projector_ds_rate"):
        assert again[key] == config[key], key
    for key in ("speech_encoder_config", "paraling_encoder_config"):
        assert ZipformerConfig.from_dict(again[key]) == ZipformerConfig.from_dict(config[key])
    assert again["llm_config"]["model_type"] == "qwen2" and again["chat_template"] == "chatml"
    written, original = load_tokenizer(str(out)), load_tokenizer(str(reference_folder))
    assert "<|AUDIO|>" in written.get_vocab()
    assert written.chat_template == original.chat_template  # the LLM's own, for "chat_template": null
    reloaded = load_model(out)
    wave = [(noise(1.1), 16000)]
    assert generate(reloaded, wave, params=PARAMS)[0].token_ids == generate(model, wave, params=PARAMS)[0].token_ids
    model.config.projector_context_layers = 1  # the reference's projectors have no layers between their two
    with pytest.raises(ValueError, match="Linear-ReLU-Linear"):
        save_model(model, tmp_path / "refused", layout="reference")


def test_bad_reference_folders_are_one_clear_error(reference_folder, tmp_path, tokenizer):
    with pytest.raises(ValueError, match="the reference layout holds Zipformer encoders; this model has semantic whisper"):
        save_model(tiny_speech_llm(tokenizer), tmp_path / "whisper-model", layout="reference")
    assert not (tmp_path / "whisper-model").exists()
    config = json.loads((reference_folder / "config.json").read_text())
    extra = _linked_copy(reference_folder, tmp_path / "extra")
    (extra / "pretrained.pt").unlink()
    state = torch.load(reference_folder / "pretrained.pt", weights_only=True)["state_dict"]
    save_file({**state, "llm.lm_head.weight": torch.zeros(2, 2)}, extra / "pretrained.safetensors")
    with pytest.raises(ValueError, match=r"pretrained.safetensors: 1 unexpected weights: llm\.lm_head\.weight"):
        load_model(extra)
    partial = _linked_copy(reference_folder, tmp_path / "partial")
    (partial / "pretrained.pt").unlink()
    save_file({k: v for k, v in state.items() if k != "paraling_encoder_projector.linear2.bias"}, partial / "model.safetensors")
    with pytest.raises(ValueError, match=r"paralinguistic projector is missing paraling_encoder_projector\.linear2\.bias"):
        load_model(partial)
    whisper = _linked_copy(reference_folder, tmp_path / "whisper")
    (whisper / "config.json").unlink()
    (whisper / "config.json").write_text(json.dumps({**config, "speech_encoder_config": {"model_type": "whisper"}}))
    with pytest.raises(ConfigError, match="speech_encoder_config has model_type 'whisper'"):
        load_model(whisper)
    missing = _linked_copy(reference_folder, tmp_path / "missing")
    (missing / "paraling_encoder").unlink()
    with pytest.raises(FileNotFoundError, match="no paraling_encoder/ folder"):
        load_model(missing)


def test_chat_infer_and_eval_take_a_reference_folder_unchanged(reference_folder, wavs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("/quit\n"))
    assert main(["chat", str(reference_folder), "--audio", str(wavs[0]), "--max-new-tokens", "6"]) == 0
    model = load_model(reference_folder)
    first = ChatSession(model).ask(str(wavs[0]), params=GenerationParams(max_new_tokens=6))
    assert f"azeros> {first.text}" in capsys.readouterr().out

    out = tmp_path / "answers.jsonl"
    assert main(["infer", str(reference_folder), *map(str, wavs), "-o", str(out), "--max-new-tokens", "6",
                 "--no-progress"]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == len(wavs) and all(r["response"] for r in records)
    (system,), _ = build_systems([f"released={reference_folder}"])
    item = EvalItem("t/s/0", "t", "s", str(wavs[0]), "hello", instruction="What did you hear?")
    answer, = system.answer([item], max_new_tokens=6)
    expected = generate(model, [str(wavs[0])], ["What did you hear?"], params=GenerationParams(max_new_tokens=6))
    assert answer.token_ids == expected[0].token_ids

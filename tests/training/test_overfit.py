"""The overfitting check: through a frozen LLM, the projector alone learns 16 utterances' targets.

A real LLM would answer these transcripts with its own words; a tiny one is taught the 16 text
conversations first (the role the self-generated targets play), then frozen. Training only the projector
on the speech must then reach the targets' tokens: proof that gradients flow through the frozen LLM into
the projector and that the labels sit on the answer tokens.
"""

from __future__ import annotations

import json

import torch
from tests.conftest import tiny_llm
from tests.training.conftest import tiny_recipe, write_recipe

from azeros.data import target_conversation
from azeros.text import IGNORE_INDEX, PromptRenderer
from azeros.training import load_recipe, train
from azeros.training.data import manifest_cuts


def _teach_text_conversations(tokenizer, manifest) -> torch.nn.Module:
    """A tiny Llama trained until it writes each transcript's target exactly (teacher forced)."""
    renderer = PromptRenderer(tokenizer)
    chats = []
    for cut in manifest_cuts(manifest):
        messages, target = target_conversation(cut, encoders=["semantic"])
        chats.append(renderer.render(messages, answer=target.response, finished=True))  # the oracle text form
    width = max(len(c.input_ids) for c in chats)
    ids = torch.tensor([c.input_ids + [0] * (width - len(c.input_ids)) for c in chats])  # [16, T]
    labels = torch.tensor([c.labels + [IGNORE_INDEX] * (width - len(c.labels)) for c in chats])  # [16, T]
    mask = (labels != IGNORE_INDEX) | (torch.arange(width)[None] < torch.tensor([c.prompt_length for c in chats])[:, None])
    llm = tiny_llm("llama", len(tokenizer)).train()
    optimizer = torch.optim.AdamW(llm.parameters(), lr=3e-3)
    for _ in range(100):
        logits = llm(input_ids=ids, attention_mask=mask.long()).logits[:, :-1]  # [16, T-1, V]
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels[:, 1:], ignore_index=IGNORE_INDEX)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        supervised = labels[:, 1:] != IGNORE_INDEX
        if loss.item() < 0.05 and bool((logits.argmax(-1) == labels[:, 1:])[supervised].all()):
            return llm.eval()
    raise AssertionError(f"the tiny LLM did not learn the text conversations (loss {loss.item():.3f})")


def test_the_projector_alone_overfits_16_utterances(tmp_path, tokenizer, manifests):
    llm = _teach_text_conversations(tokenizer, manifests["train"])
    folder = tmp_path / "taught-llm"
    llm.save_pretrained(folder)
    tokenizer.save_pretrained(folder)

    model_section = {"llm": str(folder), "dtype": "fp32",
                     "encoders": [{"kind": "whisper-ct2", "role": "semantic", "options": {"path": "whisper-tiny.en-ct2"}}]}
    recipe = tiny_recipe(
        tmp_path / "run", model_section, manifests,
        data={"valid": [str(manifests["train"])], "max_cuts": 16, "max_duration": 100.0},
        optim={"lr": 1e-2, "warmup_steps": 10, "schedule": "cosine"},
        average={"kind": "none"},
        run={"max_steps": 120, "valid_every": 40, "log_every": 10, "save_every": 0},
    )
    train(load_recipe(write_recipe(tmp_path / "recipe.yaml", recipe)))

    records = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    accuracy = [r["acc"] for r in records if r["kind"] == "valid"]
    assert accuracy[-1] > 0.95, accuracy  # next-token accuracy on the 16 utterances' answer tokens
    first_steps = next(r["acc"] for r in records if r["kind"] == "train")
    assert first_steps < 0.5  # it was learned, not there from the start

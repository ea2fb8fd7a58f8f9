"""The repetition penalty, with one meaning everywhere: transformers' and vLLM's.

A penalty ``p`` rescales the next-token logit of every token already seen (the prompt's text tokens and
the tokens generated so far): divided by ``p`` when positive, multiplied by ``p`` when negative, so
``p > 1`` makes repeats less likely and ``p = 1`` changes nothing. Its default is the LLM's own generation
config (Qwen2.5-Instruct ships 1.05; the reference generated its targets with it).

Every local generation path applies it through :func:`penalize_seen`; servers get the same number in
the request (vLLM, SGLang and llama.cpp give it the same meaning).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import GenerationConfig, LogitsProcessor

__all__ = ["RepetitionPenalty", "default_repetition_penalty", "penalize_seen", "seen_mask"]

def default_repetition_penalty(llm: Any) -> float:
    """The repetition penalty of an LLM's own generation config (1.0 when it sets none).

    Args:
        llm: a loaded transformers model (its ``generation_config``) or the folder it was loaded from
            (its ``generation_config.json``).

    Returns:
        The penalty.
    """
    if isinstance(llm, (str, Path)):
        try:
            config = GenerationConfig.from_pretrained(llm)
        except OSError:  # no generation_config.json: transformers' default
            return 1.0
    else:
        config = getattr(llm, "generation_config", None)
    value = getattr(config, "repetition_penalty", None)
    return 1.0 if value is None else float(value)


def seen_mask(token_ids: list[list[int]], vocab_size: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[b, vocab]`` booleans: which tokens each row has seen (negative ids, e.g. audio, are skipped)."""
    mask = torch.zeros(len(token_ids), vocab_size, dtype=torch.bool, device=device)
    for row, ids in enumerate(token_ids):
        known = [i for i in ids if 0 <= i < vocab_size]
        if known:
            mask[row, torch.tensor(known, device=device)] = True
    return mask


def penalize_seen(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """Apply the repetition penalty to next-token logits.

    Args:
        logits: ``[b, vocab]`` next-token logits.
        seen: ``[b, vocab]`` booleans, the tokens each row has seen.
        penalty: the penalty (1.0 leaves the logits unchanged).

    Returns:
        The penalized logits (a new tensor; ``logits`` when ``penalty`` is 1.0).
    """
    if penalty == 1.0:
        return logits
    scaled = torch.where(logits < 0, logits * penalty, logits / penalty)
    return torch.where(seen, scaled, logits)


class RepetitionPenalty(LogitsProcessor):
    """The penalty for ``generate`` from embeddings, where ``input_ids`` hold only the generated tokens.

    The prompt's text tokens are given up front, so a prompt token counts as seen just as when
    ``generate`` (or vLLM) is given the prompt's ids.

    Args:
        prompt_ids: per row, the prompt's text token ids (audio positions and padding left out).
        penalty: the penalty.
    """

    def __init__(self, prompt_ids: list[list[int]], penalty: float) -> None:
        self.prompt_ids = prompt_ids
        self.penalty = penalty
        self._prompt_seen: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._prompt_seen is None:
            self._prompt_seen = seen_mask(self.prompt_ids, scores.shape[-1], scores.device)
        seen = self._prompt_seen.clone()
        if input_ids.shape[1]:
            seen.scatter_(1, input_ids.clamp(0, scores.shape[-1] - 1), True)
        return penalize_seen(scores, seen, self.penalty)

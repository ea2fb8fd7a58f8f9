"""What a compressing projector hears, read greedily (as the model reads it) or by a CTC prefix beam search
fused with the frozen LLM as the language model: heard word error rate on the held-out split.

The projector's positions give CTC emissions (a softmax of ``--scale`` times the cosines to the blank and to
every token embedding, as align trains them); the search keeps ``--beam`` prefixes, extends each by the
``--topk`` likeliest tokens of a position, and adds ``--alpha`` times the LLM's log-probability of the token
after the prefix (in a user turn of its own chat template) and ``--beta`` per token. Positions where the
blank is near-certain only carry the prefixes on. An experiment, not the model's read-out: it asks whether
the LLM's own prior can correct what the projector mishears. Run from the repository root, after
``azeros eval held-out --data exp/hear/eval-data ...`` has written the split:

    python docs/results/hear/lm_fusion.py models/azeros-mini --alpha 0.5 --beta 1.0
"""

import argparse
import json
import math
import time

import torch
from torch import nn

from azeros.audio import load_audio
from azeros.eval.curve import held_out_tasks
from azeros.eval.metrics import word_errors
from azeros.models import load_model

NEG = -math.inf


def logadd(a: float, b: float) -> float:
    if a == NEG:
        return b
    if b == NEG:
        return a
    top = max(a, b)
    return top + math.log1p(math.exp(-abs(a - b)))


class FusedSearch:
    """CTC prefix beam search over one utterance's projected positions, the LLM as language model."""

    def __init__(self, model, alpha: float, beta: float, scale: float, beam: int, topk: int) -> None:
        self.model, self.alpha, self.beta, self.scale, self.beam, self.topk = model, alpha, beta, scale, beam, topk
        projector = model.projectors["semantic"]
        self.units = nn.functional.normalize(model.llm.get_input_embeddings().weight.detach(), dim=-1)  # [V, H]
        self.blank = nn.functional.normalize(projector.blank.detach(), dim=0)  # [H]
        opening = model.tokenizer.apply_chat_template([{"role": "user", "content": "\x00"}], tokenize=False)
        self.context = model.tokenizer(opening.split("\x00")[0], add_special_tokens=False).input_ids

    def _next_token_logprobs(self, prefixes: list[tuple[int, ...]]) -> torch.Tensor:
        """``[len(prefixes), V]``: the LLM's next-token log-probabilities after each prefix."""
        rows = [self.context + list(p) for p in prefixes]
        width = max(map(len, rows))
        ids = torch.tensor([[0] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        out = self.model.llm(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(-1) - 1).clamp(min=0),
                             logits_to_keep=1)
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1)

    def __call__(self, positions: torch.Tensor) -> list[int]:
        """The best token sequence for ``positions`` ``[c, H]``."""
        unit = nn.functional.normalize(positions, dim=-1)
        scores = torch.cat([(unit @ self.blank)[:, None], unit @ self.units.T], dim=1)  # [c, 1 + V]
        emissions = torch.log_softmax(self.scale * scores, dim=-1)
        beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG)}  # prefix -> (ends in blank, in token)
        prior: dict[tuple[int, ...], torch.Tensor] = {}
        for emission in emissions:
            blank = float(emission[0])
            if blank > math.log(0.999):
                beams = {p: (logadd(b, n) + blank, NEG) for p, (b, n) in beams.items()}
                continue
            missing = [p for p in beams if p not in prior]
            if missing:
                prior.update(zip(missing, self._next_token_logprobs(missing)))
            token_logprobs, tokens = emission[1:].topk(self.topk)
            grown: dict[tuple[int, ...], list[float]] = {}

            def add(prefix: tuple[int, ...], ends_blank: float, ends_token: float) -> None:
                entry = grown.setdefault(prefix, [NEG, NEG])
                entry[0], entry[1] = logadd(entry[0], ends_blank), logadd(entry[1], ends_token)

            for prefix, (b, n) in beams.items():
                add(prefix, logadd(b, n) + blank, NEG)
                for logprob, token in zip(token_logprobs.tolist(), tokens.tolist(), strict=True):
                    bonus = self.alpha * float(prior[prefix][token]) + self.beta
                    if prefix and prefix[-1] == token:
                        add(prefix, NEG, n + logprob)  # the same token, still sounding
                        add(prefix + (token,), NEG, b + logprob + bonus)  # the token again, after a blank
                    else:
                        add(prefix + (token,), NEG, logadd(b, n) + logprob + bonus)
            best = sorted(grown.items(), key=lambda kv: -logadd(*kv[1]))[: self.beam]
            beams = {p: (b, n) for p, (b, n) in best}
        return list(max(beams.items(), key=lambda kv: logadd(*kv[1]))[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder")
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--beta", type=float, default=1.0)
    parser.add_argument("--scale", type=float, default=20.0)
    parser.add_argument("--beam", type=int, default=8)
    parser.add_argument("--topk", type=int, default=8)
    parser.add_argument("--data", default="exp/hear/eval-data")
    args = parser.parse_args()
    model = load_model(args.folder)
    model.eval()
    projector = model.projectors["semantic"]
    vocabulary = model.llm.get_input_embeddings().weight
    search = FusedSearch(model, args.alpha, args.beta, args.scale, args.beam, args.topk)
    totals: dict[str, list[int]] = {}
    start = time.perf_counter()
    items = [item for task in held_out_tasks(args.data) for item in task.items()]
    with torch.no_grad():
        for item in items:
            frames = model.encode([load_audio(item.audio, name=item.id)])["semantic"]
            projected, counts = projector(frames[0].to(model.device), frames[1])  # [1, n, H], [1]
            reads = {"greedy": projector.heard(projected, counts, vocabulary)[0],
                     "fused": search(projected[0, : int(counts[0])])}
            source = item.id.rsplit("/", 1)[-1].split("-")[0] if item.task == "spoken_qa" else "real"
            for name, ids in reads.items():
                errors, words = word_errors(item.transcript, model.tokenizer.decode(ids))
                for key in (name, f"{name}/{source}"):
                    totals.setdefault(key, [0, 0])
                    totals[key][0] += errors
                    totals[key][1] += words
    rates = {key: round(e / w, 4) for key, (e, w) in sorted(totals.items())}
    print(json.dumps({"folder": args.folder, **{k: v for k, v in vars(args).items() if k != "folder"},
                      "items": len(items), "seconds": round(time.perf_counter() - start), "wer": rates}))


if __name__ == "__main__":
    main()

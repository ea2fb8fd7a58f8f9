"""Self-generated targets: backends that run the frozen LLM, the resumable runner and the self-elicit check.

Backends are imported when asked for (:func:`build_backend`), so reading this package loads no model code.
"""

from typing import Any

from azeros.selfgen.base import Backend, Request, Result, longest_repeat
from azeros.selfgen.check import ElicitReport, ModeCoverage, SpPick, elicit_report, write_without_declines
from azeros.selfgen.job import GenerateJob, TargetsReport, answer_limit, generate_targets, load_generate_job
from azeros.selfgen.runner import GenerateConfig, RunSummary, output_paths, run_generation, shard_of

__all__ = [
    "BACKENDS",
    "Backend",
    "ElicitReport",
    "GenerateConfig",
    "GenerateJob",
    "ModeCoverage",
    "Request",
    "Result",
    "RunSummary",
    "SpPick",
    "TargetsReport",
    "answer_limit",
    "build_backend",
    "elicit_report",
    "generate_targets",
    "load_generate_job",
    "longest_repeat",
    "output_paths",
    "run_generation",
    "shard_of",
    "write_without_declines",
]

BACKENDS = ("transformers", "openai", "vllm")


def build_backend(kind: str, model: str, **options: Any) -> Backend:
    """Create a backend by name.

    Args:
        kind: ``transformers``, ``openai`` or ``vllm``.
        model: the model (a source for local backends, the served name for ``openai``).
        **options: the backend's keyword arguments (see each backend class).

    Returns:
        The backend.
    """
    if kind == "transformers":
        from azeros.selfgen.transformers_backend import TransformersBackend

        return TransformersBackend(model, **options)
    if kind == "openai":
        from azeros.selfgen.openai_backend import OpenAIBackend

        if options.pop("chat_template", None):
            raise ValueError("chat_template: an OpenAI-compatible server renders prompts with its own template; "
                             "set it on the server, or generate with the transformers or vllm backend")

        return OpenAIBackend(options.pop("base_url"), model, **options)
    if kind == "vllm":
        from azeros.selfgen.vllm_backend import VLLMBackend

        return VLLMBackend.from_model(model, **options)
    raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")

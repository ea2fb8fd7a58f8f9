"""azeros: extend a frozen LLM to speech with self-generated instruction-free tuning (AZEROS)."""

__version__ = "0.1.0"

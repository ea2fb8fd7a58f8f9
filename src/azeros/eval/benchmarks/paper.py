"""The paper's published rows (AZEROS paper, Table 5), shown beside a run's own with ``--with-paper``."""

from __future__ import annotations

__all__ = ["PUBLISHED_AIRBENCH", "PUBLISHED_VOICEBENCH"]

_VB = ("AlpacaEval", "CommonEval", "WildVoice", "SD-QA", "BBH", "AdvBench", "IFEval", "OBQA", "MMSU", "Overall")
_AIR = ("Gender", "Emotion", "Age", "LID", "Entity", "Intent", "Avg", "Chat")


def _rows(columns: tuple[str, ...], rows: dict[str, tuple[float, ...]]) -> dict[str, dict[str, float]]:
    return {name: dict(zip(columns, values, strict=True)) for name, values in rows.items()}


PUBLISHED_VOICEBENCH = _rows(_VB, {
    "AZEROS": (4.44, 4.18, 3.91, 60.22, 56.30, 98.65, 61.29, 72.09, 59.01, 73.13),
    "Qwen2-Audio": (3.42, 3.29, 2.76, 31.65, 53.00, 99.04, 26.35, 48.35, 36.14, 53.77),
    "DeSTA2.5": (3.73, 2.52, 3.30, 46.47, 62.40, 97.69, 65.47, 72.75, 58.56, 66.04),
    "Whisper+Qwen2.5": (4.64, 4.33, 4.21, 58.50, 52.85, 98.27, 63.99, 78.24, 69.00, 76.05),
    "Qwen2.5 (text only)": (4.66, 4.55, 4.62, 62.03, 80.00, 99.04, 70.14, 84.84, 71.57, 82.69),
    "Qwen2.5 (text only, TN)": (4.61, 4.53, 4.56, 63.84, 56.30, 98.85, 66.11, 74.07, 64.51, 77.52),
})
PUBLISHED_AIRBENCH = _rows(_AIR, {
    "AZEROS": (86.75, 71.45, 61.30, 84.80, 73.60, 85.60, 77.25, 8.28),
    "Qwen2-Audio": (64.71, 48.15, 23.10, 77.80, 87.00, 84.70, 64.24, 7.20),
    "DeSTA2.5": (84.24, 64.30, 65.60, 97.30, 65.20, 83.70, 76.72, 7.57),
    "Whisper+Qwen2.5": (28.36, 50.80, 36.40, 88.00, 73.60, 82.70, 59.98, 7.34),
})

"""Task sets, one file each: open-ended prompts, spoken QA, instructions, paralinguistic, real recordings;
and a manifest read as evaluation recordings (:func:`manifest_recordings`)."""

from azeros.eval.tasks._sources import Recording, manifest_recordings
from azeros.eval.tasks.instructions import InstructionTask
from azeros.eval.tasks.open_ended import OpenEndedTask
from azeros.eval.tasks.paralinguistic import PARALINGUISTIC_QUESTIONS, ParalinguisticTask
from azeros.eval.tasks.real_recordings import REAL_QUESTIONS, RealChecksTask, RealParityTask
from azeros.eval.tasks.spoken_qa import SpokenQATask

__all__ = [
    "PARALINGUISTIC_QUESTIONS",
    "REAL_QUESTIONS",
    "InstructionTask",
    "OpenEndedTask",
    "ParalinguisticTask",
    "RealChecksTask",
    "RealParityTask",
    "Recording",
    "SpokenQATask",
    "manifest_recordings",
]

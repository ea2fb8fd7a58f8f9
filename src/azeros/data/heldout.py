"""Texts kept out of every training corpus: the spoken questions of the evaluation, with their answers.

The evaluation speaks these with voices never used in training (:mod:`azeros.data.voices`); the corpus
builder never produces them (:func:`azeros.data.assistant_texts.assistant_texts` skips them), so a
model that answers them has heard the question, not remembered it.
"""

from __future__ import annotations

__all__ = ["ARITHMETIC", "FACTS", "HELD_OUT_TEXTS", "MULTIPLE_CHOICE", "REPEAT", "YES_NO"]

# question -> accepted answers (any one, as whole words)
FACTS: dict[str, tuple[str, ...]] = {
    "what is the capital of france?": ("paris",),
    "what is the capital of japan?": ("tokyo",),
    "what is the capital of italy?": ("rome",),
    "what is the capital of germany?": ("berlin",),
    "what is the capital of spain?": ("madrid",),
    "what is the capital of england?": ("london",),
    "what is the largest planet in our solar system?": ("jupiter",),
    "what color is the sky on a clear day?": ("blue",),
    "how many legs does a spider have?": ("eight", "8"),
    "who wrote romeo and juliet?": ("shakespeare",),
    "what is the opposite of hot?": ("cold",),
    "what do bees make?": ("honey",),
    "what is frozen water called?": ("ice",),
    "which animal is known as the king of the jungle?": ("lion",),
    "how many days are there in a week?": ("seven", "7"),
    "what is the closest star to the earth?": ("sun",),
    "what color is a banana?": ("yellow",),
    "how many months are there in a year?": ("twelve", "12"),
    "what is the opposite of up?": ("down",),
    "what animal says moo?": ("cow",),
    "what is the color of grass?": ("green",),
    "what do cows drink?": ("water",),
    "which planet is known as the red planet?": ("mars",),
    "how many hours are in a day?": ("twenty four", "24"),
}
# question -> result
ARITHMETIC: dict[str, float] = {
    "what is seven plus five?": 12,
    "what is nine minus four?": 5,
    "what is six times three?": 18,
    "what is twenty divided by four?": 5,
    "what is ten plus ten?": 20,
    "what is eight times eight?": 64,
    "what is fifteen minus seven?": 8,
    "what is three plus four plus two?": 9,
    "what is one hundred minus one?": 99,
    "what is twelve divided by three?": 4,
    "what is two plus two?": 4,
    "what is five times five?": 25,
    "what is four plus six?": 10,
    "what is nine times two?": 18,
    "what is thirty plus twelve?": 42,
    "what is fifty minus twenty?": 30,
}
# question -> "yes" or "no"
YES_NO: dict[str, str] = {
    "is the sun hot?": "yes",
    "can fish swim?": "yes",
    "is ice cold?": "yes",
    "do birds have feathers?": "yes",
    "is water wet?": "yes",
    "can a dog fly?": "no",
    "is the moon made of cheese?": "no",
    "do cats bark?": "no",
    "is snow black?": "no",
    "can people breathe under water without help?": "no",
    "is paris in france?": "yes",
    "is a tomato blue?": "no",
}
# sentences to repeat: content words are scored
REPEAT: tuple[str, ...] = (
    "the red car is parked outside the bakery",
    "my brother plays the violin every evening",
    "please bring two apples and a glass of milk",
    "the train to boston leaves at nine",
    "a small green frog sat on the old stone",
    "we watched the sunset from the top of the hill",
    "the children painted a picture of a horse",
    "she forgot her umbrella at the library",
    "the doctor told him to drink more water",
    "our team won the football match on sunday",
    "the cat is sleeping on the warm blanket",
    "i would like a cup of tea with lemon",
)
# question -> (options in spoken order, index of the right one)
MULTIPLE_CHOICE: dict[str, tuple[tuple[str, ...], int]] = {
    "which of these is a fruit?": (("apple", "chair", "river", "shoe"), 0),
    "which animal can fly?": (("dog", "eagle", "fish", "horse"), 1),
    "which planet do we live on?": (("mars", "venus", "earth", "saturn"), 2),
    "which season is the coldest?": (("summer", "spring", "autumn", "winter"), 3),
    "which of these do you use to write?": (("pencil", "pillow", "plate", "bucket"), 0),
    "which of these animals lives in the sea?": (("camel", "shark", "tiger", "owl"), 1),
    "what do you use to cut paper?": (("sponge", "pillow", "scissors", "towel"), 2),
    "which of these animals is the largest?": (("mouse", "cat", "dog", "elephant"), 3),
    "which of these is a musical instrument?": (("violin", "carrot", "hammer", "blanket"), 0),
    "which of these is a vegetable?": (("stone", "carrot", "glass", "paper"), 1),
    "what language do most people speak in spain?": (("french", "german", "spanish", "italian"), 2),
    "which of these is a color?": (("table", "spoon", "cloud", "green"), 3),
}

HELD_OUT_TEXTS: frozenset[str] = frozenset(
    [*FACTS, *ARITHMETIC, *YES_NO, *REPEAT, *MULTIPLE_CHOICE]
)

"""Things people say to a voice assistant: questions, requests and statements, written here.

Templates with slot fillers give a few thousand distinct, license-clean utterances. The list is a pure
function of this file, so every machine builds the same corpus.
"""

from __future__ import annotations

import itertools
import random

__all__ = ["assistant_texts"]

_FILL = {
    "city": ["paris", "tokyo", "cairo", "lima", "oslo", "sydney", "toronto", "madrid", "nairobi", "seoul",
             "berlin", "mumbai", "chicago", "lisbon", "dublin", "vienna"],
    "country": ["france", "japan", "egypt", "peru", "norway", "australia", "canada", "spain", "kenya",
                "brazil", "india", "mexico", "italy", "greece", "chile", "sweden"],
    "food": ["pancakes", "lentil soup", "banana bread", "fried rice", "a tomato salad", "pizza dough",
             "chicken curry", "apple pie", "vegetable stew", "guacamole", "pasta sauce", "scrambled eggs"],
    "topic": ["black holes", "volcanoes", "the roman empire", "photosynthesis", "the moon landing",
              "honey bees", "climate change", "electric cars", "the internet", "dinosaurs", "rainbows",
              "earthquakes", "the human heart", "coral reefs", "the printing press", "vaccines"],
    "task": ["fix a flat bicycle tire", "tie a tie", "start a vegetable garden", "write a cover letter",
             "change a light bulb safely", "learn to swim", "save money each month", "fall asleep faster",
             "clean a cast iron pan", "remove a coffee stain", "plan a birthday party", "train a puppy",
             "make new friends in a new city", "prepare for a job interview", "stop procrastinating"],
    "thing": ["book", "movie", "board game", "podcast", "hiking trail", "song", "restaurant", "gift"],
    "occasion": ["a rainy weekend", "my sister's birthday", "a long flight", "a family dinner",
                 "a first date", "a quiet evening", "a road trip", "my dad who loves history"],
    "minutes": ["five", "ten", "fifteen", "twenty", "thirty", "forty five"],
    "time": ["six thirty", "seven", "eight fifteen", "nine", "noon", "ten tonight"],
    "person": ["my mother", "my boss", "my neighbor", "an old friend", "my teacher", "my brother"],
    "feeling": ["tired", "excited", "nervous", "bored", "happy", "stressed", "lonely", "hungry"],
    "place": ["the beach", "the mountains", "my grandmother's house", "a long business trip",
              "the dentist", "a concert", "the hospital", "a camping trip"],
    "adjective": ["amazing", "exhausting", "wonderful", "disappointing", "really fun", "a bit strange"],
    "number": ["twelve", "seventeen", "twenty three", "forty", "sixty four", "one hundred"],
    "animal": ["a cat", "a dog", "a parrot", "a rabbit", "a goldfish", "a turtle"],
    "language": ["spanish", "french", "japanese", "german", "italian", "korean"],
    "day": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"],
    "season": ["spring", "summer", "autumn", "winter"],
    "phrase": ["good night", "where is the station", "how much is this", "nice to meet you", "i am lost",
               "happy birthday", "see you tomorrow", "i need a doctor"],
}

_TEMPLATES = [
    # questions
    "what is the weather like in {city} today?",
    "what is the capital of {country}?",
    "how do i {task}?",
    "can you explain {topic} in simple words?",
    "why is {topic} important?",
    "what is a good recipe for {food}?",
    "how long does it take to cook {food}?",
    "can you recommend a {thing} for {occasion}?",
    "what language do people speak in {country}?",
    "how far is {city} from {country}?",
    "what is {number} times four?",
    "what is the square root of {number}?",
    "is {animal} a good pet for a small apartment?",
    "what should i know before visiting {city}?",
    "how do you say thank you in {language}?",
    "what are three fun facts about {topic}?",
    "who should i call first if i feel {feeling}?",
    "do you think i should learn {language} or {language2}?",
    "what time is it in {city} right now?",
    "which is bigger, {country} or {country2}?",
    "what is the weather like in {city} on {day}?",
    "what is {number} plus {number2}?",
    "how do i say {phrase} in {language}?",
    "is it cheaper to visit {country} or {country2} in {season}?",
    "what should i pack for {place} in {season}?",
    # requests
    "please set a timer for {minutes} minutes.",
    "wake me up at {time} tomorrow.",
    "remind me to call {person} at {time}.",
    "tell me a short joke about {topic}.",
    "write a short poem about {topic}.",
    "give me three tips to {task}.",
    "help me write a message to {person}.",
    "summarize the history of {topic} in two sentences.",
    "suggest a name for {animal}.",
    "make a shopping list for {food}.",
    "translate good morning into {language}.",
    "plan a one day trip to {city} for me.",
    "tell me a bedtime story about {animal}.",
    "explain {topic} like i am five years old.",
    "count from one to {number} in steps of ten.",
    "book me a flight from {city} to {city2} on {day}.",
    "tell me how {topic} and {topic2} are connected.",
    "help me cook {food} for {person} on {day}.",
    # statements
    "i just got back from {place} and it was {adjective}.",
    "i feel {feeling} today.",
    "my friend says {topic} is not real.",
    "i am thinking about moving to {city}.",
    "i burned the {food} again.",
    "i want to get {animal} for my kids.",
    "i have never been to {country} but i would love to go.",
    "i finally learned how to {task}.",
    "{person} gave me a {thing} for my birthday.",
    "i need to {task} before the weekend.",
    "i started learning {language} last month.",
    "the trip to {place} was {adjective}.",
    "i am so {feeling} about tomorrow.",
]


def _expand(template: str) -> list[str]:
    names = sorted({part.split("}")[0] for part in template.split("{")[1:]})
    pools = [_FILL[name.rstrip("2")] for name in names]
    texts = []
    for values in itertools.product(*pools):
        filled = dict(zip(names, values))
        if any(name.endswith("2") and filled[name] == filled[name[:-1]] for name in names):
            continue  # "spanish or spanish"
        texts.append(template.format(**filled))
    return texts


def assistant_texts(count: int = 3000, seed: int = 0) -> list[str]:
    """Distinct utterances spread evenly over the templates.

    Args:
        count: how many (at most the number of distinct fills).
        seed: which ones.

    Returns:
        ``count`` distinct lowercase utterances with punctuation, in a seeded order.
    """
    rng = random.Random(seed)
    per_template = [rng.sample(texts := _expand(t), len(texts)) for t in _TEMPLATES]
    picked: list[str] = []
    for round_ in itertools.count():
        added = False
        for texts in per_template:
            if round_ < len(texts):
                picked.append(texts[round_])
                added = True
                if len(picked) == count:
                    return picked
        if not added:
            return picked
    return picked

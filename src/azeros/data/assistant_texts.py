"""Things people say to a voice assistant: questions, requests and statements, written here.

Templates with slot fillers over word lists of a few thousand words give tens of thousands of distinct,
license-clean utterances. The list is a pure function of this file, so every machine builds the same
corpus. Texts reserved for evaluation (:data:`azeros.data.heldout.HELD_OUT_TEXTS`) are never produced.
"""

from __future__ import annotations

import itertools
import random

from azeros.data.heldout import HELD_OUT_TEXTS
from azeros.text import normalize_text

__all__ = ["assistant_texts", "vocabulary"]


def _words(text: str) -> list[str]:
    return [w.strip() for w in text.split(",") if w.strip()]


_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
          "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_word(n: int) -> str:
    if n < 20:
        return _UNITS[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _UNITS[n % 10])
    return "one hundred" if n == 100 else _UNITS[n // 100] + " hundred"


_FILL: dict[str, list[str]] = {
    "country": _words("""france, japan, egypt, peru, norway, australia, canada, spain, kenya, brazil, india, mexico,
        italy, greece, chile, sweden, germany, china, russia, argentina, colombia, nigeria, ghana, morocco,
        portugal, ireland, scotland, poland, ukraine, turkey, iran, iraq, israel, jordan, lebanon, pakistan,
        bangladesh, nepal, thailand, vietnam, cambodia, indonesia, malaysia, singapore, the philippines,
        south korea, mongolia, new zealand, fiji, iceland, finland, denmark, the netherlands, belgium,
        switzerland, austria, hungary, romania, bulgaria, serbia, croatia, albania, cuba, jamaica, haiti,
        panama, costa rica, guatemala, honduras, venezuela, ecuador, bolivia, uruguay, paraguay, ethiopia,
        somalia, tanzania, uganda, rwanda, zambia, zimbabwe, botswana, namibia, angola, senegal, mali,
        algeria, tunisia, libya, sudan, madagascar, saudi arabia, qatar, oman, yemen, kuwait, afghanistan,
        uzbekistan, kazakhstan, georgia, armenia, estonia, latvia, lithuania, slovakia, slovenia, luxembourg,
        monaco, malta, cyprus, sri lanka, the maldives, laos, myanmar, bhutan, taiwan, the united states"""),
    "city": _words("""paris, tokyo, cairo, lima, oslo, sydney, toronto, madrid, nairobi, seoul, berlin, mumbai,
        chicago, lisbon, dublin, vienna, london, rome, athens, moscow, beijing, shanghai, hong kong, bangkok,
        hanoi, jakarta, manila, delhi, karachi, dhaka, istanbul, tehran, baghdad, dubai, riyadh, doha,
        amsterdam, brussels, zurich, geneva, prague, warsaw, budapest, bucharest, stockholm, helsinki,
        copenhagen, reykjavik, edinburgh, glasgow, manchester, liverpool, barcelona, seville, valencia,
        milan, naples, venice, florence, munich, hamburg, frankfurt, cologne, marseille, lyon, nice,
        montreal, vancouver, calgary, ottawa, boston, new york, miami, atlanta, dallas, houston, denver,
        seattle, portland, san francisco, los angeles, san diego, phoenix, las vegas, detroit, philadelphia,
        washington, new orleans, nashville, havana, mexico city, bogota, quito, santiago, buenos aires,
        montevideo, rio de janeiro, sao paulo, lagos, accra, dakar, casablanca, marrakech, tunis, addis ababa,
        kampala, kigali, cape town, johannesburg, melbourne, brisbane, perth, auckland, wellington, osaka,
        kyoto, busan, taipei, singapore, kuala lumpur, kathmandu, colombo, lahore, kabul, tbilisi, yerevan,
        baku, kiev, minsk, riga, tallinn, vilnius, krakow, salzburg, porto, bordeaux, oxford, cambridge"""),
    "food": _words("""pancakes, lentil soup, banana bread, fried rice, a tomato salad, pizza dough, chicken curry,
        apple pie, vegetable stew, guacamole, pasta sauce, scrambled eggs, french toast, beef stew, fish tacos,
        a caesar salad, mushroom risotto, roast chicken, garlic bread, chocolate cake, lemon cookies,
        carrot cake, potato salad, onion soup, spaghetti carbonara, lasagna, meatballs, falafel, hummus,
        sushi rolls, miso soup, ramen, pad thai, green curry, spring rolls, dumplings, fried noodles,
        a burrito, nachos, enchiladas, chili con carne, corn bread, blueberry muffins, oatmeal, granola,
        a smoothie, lemonade, iced tea, hot chocolate, a grilled cheese sandwich, a club sandwich,
        a veggie burger, baked salmon, shrimp pasta, tuna salad, egg fried rice, stuffed peppers,
        roasted vegetables, mashed potatoes, sweet potato fries, a fruit salad, cheesecake, brownies,
        waffles, crepes, a quiche, a frittata, an omelette, paella, gazpacho, couscous, tabbouleh, kebabs,
        biryani, dal, naan bread, samosas, butter chicken, fish and chips, shepherd's pie, pumpkin soup,
        tomato soup, chicken noodle soup, a pot roast, pulled pork, barbecue ribs, coleslaw, corn on the cob,
        rice pudding, a peach cobbler, tiramisu, a pavlova, gingerbread, a sourdough loaf, bagels,
        cinnamon rolls, pretzels, popcorn, a cheese platter, stir fried tofu, a bean salad, black bean soup,
        minestrone, pesto pasta, ravioli, gnocchi, a pizza margherita, fried chicken, chicken wings"""),
    "animal": _words("""a cat, a dog, a parrot, a rabbit, a goldfish, a turtle, a hamster, a guinea pig, a horse,
        a pony, a goat, a sheep, a cow, a pig, a chicken, a duck, a goose, a donkey, a llama, a ferret,
        a lizard, a snake, a frog, a canary, a budgie, a hedgehog, a mouse, a rat, a tortoise, an iguana,
        a chinchilla, a gecko"""),
    "wild": _words("""lions, tigers, elephants, giraffes, zebras, hippos, rhinos, gorillas, chimpanzees, monkeys,
        kangaroos, koalas, pandas, polar bears, brown bears, wolves, foxes, deer, moose, bison, camels,
        penguins, dolphins, whales, sharks, octopuses, jellyfish, sea turtles, seals, otters, beavers,
        squirrels, bats, owls, eagles, hawks, vultures, flamingos, peacocks, pelicans, crows, sparrows,
        hummingbirds, bees, ants, butterflies, spiders, scorpions, crocodiles, alligators, cheetahs,
        leopards, jaguars, hyenas, meerkats, sloths, armadillos, porcupines, raccoons, skunks, hedgehogs,
        salmon, eels, crabs, lobsters, snails, worms, mosquitoes, dragonflies, ladybugs, grasshoppers"""),
    "topic": _words("""black holes, volcanoes, the roman empire, photosynthesis, the moon landing, honey bees,
        climate change, electric cars, the internet, dinosaurs, rainbows, earthquakes, the human heart,
        coral reefs, the printing press, vaccines, gravity, electricity, magnets, the solar system, comets,
        the ocean tides, glaciers, deserts, rain forests, the water cycle, thunderstorms, tornadoes,
        hurricanes, the ancient egyptians, the pyramids, the vikings, the middle ages, the renaissance,
        the industrial revolution, the french revolution, the cold war, the olympic games, democracy,
        money, banks, inflation, taxes, the stock market, computers, smartphones, artificial intelligence,
        robots, satellites, rockets, airplanes, trains, bridges, skyscrapers, the human brain, sleep,
        dreams, memory, the immune system, bacteria, viruses, genes, evolution, fossils, the big bang,
        the speed of light, sound waves, music theory, jazz, classical music, poetry, shakespeare,
        chess, mathematics, prime numbers, fractions, geometry, maps, languages, writing systems,
        the alphabet, recycling, solar power, wind turbines, nuclear energy, plastic pollution, bread making,
        coffee, chocolate, tea, wine making, cheese making, the silk road, pirates, castles, knights,
        samurai, mummies, the great wall of china, the titanic, the northern lights, eclipses, mars,
        jupiter, saturn's rings, the milky way, stars, the seasons, time zones, calendars, clocks"""),
    "task": _words("""fix a flat bicycle tire, tie a tie, start a vegetable garden, write a cover letter,
        change a light bulb safely, learn to swim, save money each month, fall asleep faster,
        clean a cast iron pan, remove a coffee stain, plan a birthday party, train a puppy,
        make new friends in a new city, prepare for a job interview, stop procrastinating, bake bread,
        paint a room, fix a leaking tap, unclog a drain, iron a shirt, sew on a button, change a car tire,
        jump start a car, build a bookshelf, hang a picture, grow tomatoes, care for a cactus,
        repot a plant, make compost, brew coffee at home, make cold brew, cook rice perfectly,
        boil an egg, sharpen a knife, clean my laptop screen, speed up my computer, back up my photos,
        make a budget, pay off debt, write a resume, ask for a raise, give a good speech,
        learn a new language, memorize a poem, study for an exam, take better notes, read faster,
        meditate, do a push up, start running, stretch after exercise, improve my posture,
        drink more water, eat more vegetables, cook for a large group, pack a suitcase, beat jet lag,
        choose a good watermelon, fold a fitted sheet, wash a wool sweater, get rid of fruit flies,
        keep my houseplants alive, teach a child to ride a bike, apologize to a friend,
        say no politely, stay calm in traffic, wake up early, organize my closet, clean the oven,
        wrap a present, write a thank you note, play the guitar, draw a horse, take a better photo,
        set up a fish tank, start a podcast, make a paper airplane, skip stones on a lake, tie a bowline knot"""),
    "thing": _words("""book, movie, board game, podcast, hiking trail, song, restaurant, gift, video game,
        television show, album, museum, park, card game, novel, comic book, documentary, cookbook, app,
        coffee shop, campsite, beach, bakery, puzzle"""),
    "occasion": _words("""a rainy weekend, my sister's birthday, a long flight, a family dinner, a first date,
        a quiet evening, a road trip, my dad who loves history, a wedding, a graduation, a housewarming,
        a baby shower, a retirement party, a summer picnic, a snowy afternoon, a school project,
        my grandmother's visit, a team meeting, a lazy sunday, a long train ride, new year's eve,
        a camping weekend, my best friend's anniversary, a sleepover, a holiday at the beach"""),
    "person": _words("""my mother, my boss, my neighbor, an old friend, my teacher, my brother, my sister,
        my father, my grandmother, my grandfather, my aunt, my uncle, my cousin, my wife, my husband,
        my son, my daughter, my doctor, my dentist, my landlord, my coworker, my roommate, my coach,
        the plumber, the school, my best friend, my partner, the bank, the vet, the mechanic"""),
    "feeling": _words("""tired, excited, nervous, bored, happy, stressed, lonely, hungry, anxious, calm, grateful,
        proud, jealous, confused, curious, hopeful, sad, angry, relaxed, sleepy, restless, overwhelmed,
        cheerful, homesick, embarrassed, frustrated, motivated, sick, cold, thirsty"""),
    "place": _words("""the beach, the mountains, my grandmother's house, a long business trip, the dentist,
        a concert, the hospital, a camping trip, the zoo, the museum, the library, the gym, the airport,
        the farmers market, a wedding, the countryside, a ski resort, an island, the desert, the lake,
        a music festival, the city center, an old castle, a football match, the aquarium, a theme park,
        a cooking class, a yoga retreat, a job interview, the national park"""),
    "adjective": _words("""amazing, exhausting, wonderful, disappointing, really fun, a bit strange, beautiful,
        boring, relaxing, stressful, unforgettable, expensive, cheap, crowded, peaceful, noisy, delicious,
        terrible, lovely, surprising, scary, too short, too long, perfect, magical, tiring, exciting,
        interesting, strange, hilarious"""),
    "language": _words("""spanish, french, japanese, german, italian, korean, chinese, russian, arabic,
        portuguese, hindi, dutch, swedish, greek, turkish, polish, vietnamese, thai, swahili, hebrew,
        norwegian, danish, finnish, czech, irish, welsh, latin, indonesian"""),
    "day": _words("monday, tuesday, wednesday, thursday, friday, saturday, sunday"),
    "month": _words("""january, february, march, april, may, june, july, august, september, october,
        november, december"""),
    "season": _words("spring, summer, autumn, winter"),
    "minutes": _words("five, ten, fifteen, twenty, thirty, forty five, sixty, ninety"),
    "time": _words("""six thirty, seven, eight fifteen, nine, noon, ten tonight, five in the morning,
        half past four, quarter to eight, midnight, eleven, three in the afternoon"""),
    "phrase": _words("""good night, where is the station, how much is this, nice to meet you, i am lost,
        happy birthday, see you tomorrow, i need a doctor, where is the toilet, the bill please,
        i love you, good luck, excuse me, i do not understand, can you help me, what time is it"""),
    "job": _words("""a nurse, a doctor, a teacher, a pilot, a chef, a firefighter, a police officer, a lawyer,
        an engineer, an architect, a programmer, a farmer, a carpenter, an electrician, a plumber,
        a dentist, a vet, a pharmacist, a journalist, a photographer, a painter, a musician, an actor,
        a dancer, a baker, a butcher, a librarian, a scientist, an astronaut, a mechanic, a tailor,
        a gardener, a translator, an accountant, a banker, a soldier, a sailor, a judge, a designer,
        a writer, a poet, a barber, a cashier, a waiter, a truck driver, a bus driver, a surgeon,
        a psychologist, a coach, a referee"""),
    "object": _words("""umbrella, backpack, bicycle, laptop, kettle, toaster, blender, microwave, vacuum cleaner,
        washing machine, refrigerator, lamp, mirror, pillow, blanket, mattress, sofa, chair, desk,
        bookshelf, wardrobe, carpet, curtain, clock, watch, wallet, key, phone charger, headphones,
        camera, printer, keyboard, guitar, piano, violin, drum, flute, trumpet, tent, sleeping bag,
        flashlight, hammer, screwdriver, ladder, shovel, garden hose, lawn mower, bucket, broom, sponge,
        towel, toothbrush, hair dryer, scissors, stapler, notebook, pencil, pen, ruler, calculator,
        globe, telescope, microscope, candle, vase, teapot, frying pan, saucepan, cutting board,
        coffee machine, water bottle, lunch box, suitcase, passport, map, compass, helmet, skateboard,
        scooter, surfboard, kite, football, basketball, tennis racket, baseball glove, chess board"""),
    "sport": _words("""football, basketball, tennis, golf, swimming, cycling, running, skiing, snowboarding,
        surfing, rowing, climbing, boxing, karate, judo, fencing, archery, volleyball, baseball, cricket,
        rugby, hockey, badminton, table tennis, skating, gymnastics, yoga, pilates, hiking, sailing,
        diving, horse riding, bowling, darts, wrestling, weight lifting, dancing, kayaking"""),
    "instrument": _words("""the piano, the guitar, the violin, the cello, the drums, the flute, the trumpet,
        the saxophone, the clarinet, the harp, the ukulele, the banjo, the accordion, the harmonica,
        the trombone, the bass guitar, the oboe, the xylophone"""),
    "color": _words("""red, blue, green, yellow, orange, purple, pink, brown, black, white, gray, gold, silver,
        turquoise, navy blue, beige, maroon, lavender"""),
    "name": _words("""anna, ben, carla, david, emma, felix, grace, henry, isabel, jack, karen, leo, maria, noah,
        olivia, peter, quinn, rosa, sam, tina, umar, victor, wendy, xavier, yara, zoe, alice, bruno, chloe,
        daniel, elena, frank, george, hannah, ivan, julia, kevin, laura, mike, nina, oscar, paula, ruth,
        simon, thomas, ursula, vera, william, yusuf, amir, priya, kenji, mei, lars, ingrid, pablo, lucia,
        omar, fatima, raj, sofia, hugo, clara, adam, eva, marco, nora"""),
    "hobby": _words("""knitting, gardening, painting, drawing, photography, fishing, baking, cooking, reading,
        writing poems, bird watching, stamp collecting, pottery, woodworking, origami, calligraphy,
        jigsaw puzzles, chess, camping, hiking, sewing, singing, playing cards, model trains, astronomy,
        dancing, juggling, magic tricks, video games, scrapbooking, beekeeping, rock climbing"""),
    "body": _words("""head, back, neck, knee, shoulder, stomach, throat, tooth, ear, eye, foot, ankle, wrist,
        elbow, hip, chest, finger, toe, nose, skin"""),
    "plant": _words("""roses, tulips, sunflowers, daisies, orchids, lavender, basil, mint, rosemary, tomatoes,
        strawberries, potatoes, carrots, onions, garlic, lettuce, spinach, cucumbers, peppers, pumpkins,
        apple trees, lemon trees, oak trees, pine trees, ferns, cacti, bamboo, ivy, lilies, herbs"""),
    "vehicle": _words("""a car, a bus, a train, a plane, a boat, a ferry, a taxi, a motorbike, a bicycle,
        a scooter, an electric car, a van, a truck, a tram, the subway, a helicopter"""),
    "weather": _words("""rain, snow, fog, wind, hail, sunshine, thunder, frost, heat, humidity, a storm,
        a heat wave, a cold front"""),
    "number": [_number_word(n) for n in range(2, 101)],
    "small": [_number_word(n) for n in range(2, 13)],
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
    "how far is {city} from {city2}?",
    "what is {number} times {small}?",
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
    "what is {number} minus {small}?",
    "how do i say {phrase} in {language}?",
    "is it cheaper to visit {country} or {country2} in {season}?",
    "what should i pack for {place} in {season}?",
    "what do {wild} eat?",
    "where do {wild} live?",
    "how long do {wild} live?",
    "are {wild} dangerous to people?",
    "how do i become {job}?",
    "what does {job} do all day?",
    "how much does {job} earn in {country}?",
    "how do i clean my {object}?",
    "what is the best {object} for a student?",
    "how do i fix a broken {object}?",
    "what are the rules of {sport}?",
    "is {sport} good exercise?",
    "how long does it take to learn {instrument}?",
    "what is a good song to play on {instrument}?",
    "when should i plant {plant}?",
    "how often should i water {plant}?",
    "is it faster to go to {city} by {vehicle} or by {vehicle2}?",
    "why does my {body} hurt after {sport}?",
    "what is the best way to start {hobby}?",
    "what goes well with the color {color}?",
    "what is the weather usually like in {city} in {month}?",
    "how do people celebrate the new year in {country}?",
    "what is the most famous food in {country}?",
    "what happened in {country} in the middle ages?",
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
    "count from one to {number}.",
    "book me a flight from {city} to {city2} on {day}.",
    "tell me how {topic} and {topic2} are connected.",
    "help me cook {food} for {person} on {day}.",
    "tell me a story about {name} and {wild}.",
    "write a birthday message for {name}.",
    "remind {name} to bring the {object} on {day}.",
    "send a text to {name} saying i will be late.",
    "add {food} to my shopping list.",
    "play some music for {occasion}.",
    "find a {thing} about {topic}.",
    "describe {wild} in three sentences.",
    "list five words that rhyme with {color}.",
    "give me a workout plan for {sport}.",
    "write a short song about {weather} in {city}.",
    "teach me one word in {language} every day.",
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
    "my {body} hurts since {day}.",
    "i lost my {object} at {place}.",
    "{name} wants to become {job}.",
    "i saw {wild} at {place} last {season}.",
    "i bought a new {object} and it is {adjective}.",
    "my favorite color is {color}.",
    "i have been playing {instrument} for {small} years.",
    "{name} and i are going to {city} in {month}.",
    "the {weather} in {city} was {adjective}.",
    "i just planted {plant} in my garden.",
    "i took {vehicle} to work and it was {adjective}.",
    "my new hobby is {hobby}.",
    "{name} cooked {food} for us and it was {adjective}.",
]


def _slots(template: str) -> list[str]:
    return sorted({part.split("}")[0] for part in template.split("{")[1:]})


def _pool(slot: str) -> list[str]:
    return _FILL[slot.rstrip("2")]


def _fill(template: str, rng: random.Random) -> str | None:
    values = {slot: rng.choice(_pool(slot)) for slot in _slots(template)}
    if any(slot.endswith("2") and values[slot] == values[slot[:-1]] for slot in values):
        return None  # "spanish or spanish"
    return template.format(**values)


def _distinct_fills(template: str) -> int:
    count = 1
    for slot in _slots(template):
        count *= len(_pool(slot))
    return count


def assistant_texts(count: int = 3000, seed: int = 0) -> list[str]:
    """Distinct utterances spread evenly over the templates.

    Templates take turns; each turn draws a fill at random (seeded) until an unseen text comes up.
    Texts reserved for evaluation are skipped.

    Args:
        count: how many (at most the number of distinct fills).
        seed: which ones.

    Returns:
        ``count`` distinct lowercase utterances with punctuation, in a seeded order.
    """
    rng = random.Random(seed)
    reserved = {normalize_text(text) for text in HELD_OUT_TEXTS}
    seen: set[str] = set()
    drawn = {t: 0 for t in _TEMPLATES}
    picked: list[str] = []
    for template in itertools.cycle(_TEMPLATES):
        if all(drawn[t] >= _distinct_fills(t) // 2 for t in _TEMPLATES) or len(picked) == count:
            return picked
        if drawn[template] >= _distinct_fills(template) // 2:
            continue  # only half a template's fills are drawn, so rejection sampling stays cheap
        for _ in range(64):
            text = _fill(template, rng)
            if text is not None and text not in seen and normalize_text(text) not in reserved:
                seen.add(text)
                picked.append(text)
                drawn[template] += 1
                break
        else:
            drawn[template] = _distinct_fills(template)  # exhausted in practice
    return picked


def vocabulary(texts: list[str]) -> set[str]:
    """The distinct words of some texts (normalized)."""
    return {word for text in texts for word in normalize_text(text).split()}

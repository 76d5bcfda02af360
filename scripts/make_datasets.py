"""Generate the small self-made example datasets in `datasets/` (deterministic).

    python scripts/make_datasets.py            # writes datasets/*/train.jsonl, dev.jsonl, test.jsonl

- math:   templated grade-school word problems with a numeric answer.
- intent: customer-support messages labelled with one of eight intents. Which
          demonstrations are in the prompt decides what a few-shot model can answer,
          so it shows what compiling does.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

NAMES = ["Ava", "Ben", "Chloe", "Dev", "Emma", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kira", "Leo"]
ITEMS = ["apples", "marbles", "stickers", "books", "pencils", "cookies", "stamps", "shells"]


def math_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    for _ in range(n):
        name, item = rng.choice(NAMES), rng.choice(ITEMS)
        a, b, c = rng.randint(2, 40), rng.randint(2, 30), rng.randint(2, 6)
        kind = rng.randrange(4)
        if kind == 0:
            q, ans = f"{name} has {a} {item} and gets {b} more. How many {item} does {name} have now?", a + b
        elif kind == 1:
            a = a + b
            q, ans = f"{name} had {a} {item} and gave away {b}. How many {item} are left?", a - b
        elif kind == 2:
            q, ans = f"{name} buys {c} boxes with {b} {item} in each box. How many {item} is that in total?", b * c
        else:
            total = b * c
            q, ans = f"{name} shares {total} {item} equally among {c} friends. How many does each friend get?", b
        rows.append({"question": q, "answer": float(ans)})
    return rows


INTENTS: dict[str, list[str]] = {
    "card_lost": [
        "I lost my card {when}, can you block it?",
        "My {card} is missing, I think it was stolen {when}",
        "Someone took my wallet with my {card} {when}",
        "I can't find my {card} anywhere, please freeze it",
    ],
    "refund_request": [
        "I want my money back for the order I returned {when}",
        "Please refund the {thing} I sent back {when}",
        "How long until I get a refund for my return?",
        "The {thing} was faulty and I need a refund",
    ],
    "double_charge": [
        "I was charged twice for the same {thing} {when}",
        "There are two identical payments on my {card} for one purchase",
        "Why did you take the payment two times {when}?",
        "A duplicate charge appeared on my statement {when}",
    ],
    "password_reset": [
        "I forgot my password and can't log in",
        "How do I reset my password on the {app}?",
        "The {app} says my password is wrong, I need a new one",
        "Locked out of my account {when}, need to change the password",
    ],
    "delivery_late": [
        "My {thing} still hasn't arrived, it was due {when}",
        "Where is my package? The tracking hasn't moved since {when}",
        "The delivery of my {thing} is late",
        "I ordered a {thing} two weeks ago and it never came",
    ],
    "change_address": [
        "I moved {when} and need to update my address",
        "How can I change the delivery address on my account?",
        "Please send my {thing} to my new home address",
        "Update my postal address in the {app}",
    ],
    "cancel_subscription": [
        "I want to cancel my subscription",
        "Stop my monthly plan from renewing, please",
        "How do I end my membership in the {app}?",
        "Please cancel the plan I signed up for {when}",
    ],
    "exchange_rate": [
        "What exchange rate do you use for payments in {currency}?",
        "How much will I get if I convert dollars to {currency}?",
        "Why was the {currency} rate on my transfer so bad?",
        "Is there a fee when I pay in {currency} abroad?",
    ],
}
FILL = {
    "when": ["yesterday", "last week", "this morning", "on Monday", "two days ago", "at the weekend"],
    "card": ["card", "debit card", "credit card", "bank card", "visa card"],
    "thing": ["jacket", "phone case", "order", "headphones", "lamp", "shoes", "book"],
    "app": ["app", "website", "mobile app", "online banking"],
    "currency": ["euros", "yen", "pounds", "pesos", "francs"],
}


def intent_rows(rng: random.Random, n: int) -> list[dict]:
    rows = []
    labels = sorted(INTENTS)
    for i in range(n):
        label = labels[i % len(labels)]
        text = rng.choice(INTENTS[label])
        for key, options in FILL.items():
            text = text.replace("{" + key + "}", rng.choice(options))
        rows.append({"message": text, "intent": label})
    rng.shuffle(rows)
    return rows


def write(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "datasets")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    for split, n in (("train", 60), ("dev", 40), ("test", 40)):
        write(args.out / "math" / f"{split}.jsonl", math_rows(rng, n))
    for split, n in (("train", 96), ("dev", 64), ("test", 64)):
        write(args.out / "intent" / f"{split}.jsonl", intent_rows(rng, n))
    write_world(args.out, random.Random(args.seed + 1))
    print(f"wrote datasets under {args.out}")



# -- a small fictional world for retrieval, multi-hop, citations and tools ----------------
WORLD_CITIES = [("Velmora", "Oskaria", 1288), ("Dunhallow", "Brevia", 1402), ("Carsel", "Oskaria", 1517),
                ("Ithenby", "Lunmark", 1175), ("Porvenne", "Brevia", 1630), ("Quillan", "Lunmark", 1344),
                ("Skarholm", "Tessaly", 1096), ("Amberfeld", "Tessaly", 1551)]
WORLD_AUTHORS = [("Mira Castell", "Velmora"), ("Oren Dask", "Dunhallow"), ("Lio Fennick", "Carsel"),
                 ("Tamsin Ruvo", "Ithenby"), ("Bram Ellory", "Porvenne"), ("Nadia Quen", "Quillan"),
                 ("Edvin Sorl", "Skarholm"), ("Ilse Marrow", "Amberfeld")]
WORLD_BOOKS = [("The Glass Orchard", "Mira Castell"), ("Salt and Lanterns", "Oren Dask"),
               ("A Map of Small Rivers", "Lio Fennick"), ("The Winter Clockmaker", "Tamsin Ruvo"),
               ("Harbour of Echoes", "Bram Ellory"), ("The Quiet Cartographer", "Nadia Quen"),
               ("Ashes of the North Gate", "Edvin Sorl"), ("Letters to Amberfeld", "Ilse Marrow")]


def world_corpus() -> list[dict]:
    rows = []
    for city, country, year in WORLD_CITIES:
        rows.append({"id": f"city-{city}", "title": city,
                     "text": f"{city} is a city in {country}. It was founded in {year}."})
    for author, city in WORLD_AUTHORS:
        rows.append({"id": f"author-{author}", "title": author,
                     "text": f"{author} is a writer who was born in {city}."})
    for book, author in WORLD_BOOKS:
        rows.append({"id": f"book-{book}", "title": book, "text": f"{book} is a novel written by {author}."})
    return rows


def world_sets(rng: random.Random) -> dict[str, list[dict]]:
    born = dict(WORLD_AUTHORS)
    founded = {c: y for c, _, y in WORLD_CITIES}
    multihop = [{"question": f"In which city was the author of {book} born?", "answer": born[author]}
                for book, author in WORLD_BOOKS]
    cited = [{"question": f"Who wrote {book}?", "answer": author} for book, author in WORLD_BOOKS]
    cited += [{"question": f"In which country is {city}?", "answer": country} for city, country, _ in WORLD_CITIES]
    pairs = [(a, b) for a in founded for b in founded if founded[a] > founded[b]]
    agent = [{"question": f"How many years after {b} was {a} founded?", "answer": founded[a] - founded[b]}
             for a, b in rng.sample(pairs, 16)]
    for rows in (multihop, cited):
        rng.shuffle(rows)
    return {"multihop": multihop, "cited": cited, "agent": agent}


TRIAGE = {
    "billing": ["I was charged twice for my subscription", "Can I get an invoice for last month?",
                "Why is there an extra fee on my bill?", "My refund has not arrived yet",
                "Please update the card you charge every month", "The price on my receipt is wrong"],
    "tech": ["The app crashes when I open settings", "I cannot log in, the page keeps loading",
             "Sync stopped working on my laptop", "The export button gives an error",
             "Notifications never show up on my phone", "The website is very slow today"],
    "general": ["What are your opening hours?", "Do you have an office in Berlin?",
                "Can I talk to someone about a partnership?", "Where can I read your privacy policy?",
                "Are you hiring engineers?", "How do I send you feedback?"],
}


def triage_rows(rng: random.Random) -> list[dict]:
    rows = [{"message": m, "queue": q} for q, ms in TRIAGE.items() for m in ms]
    rng.shuffle(rows)
    return rows


def write_world(out: Path, rng: random.Random) -> None:
    write(out / "world" / "corpus.jsonl", world_corpus())
    for name, rows in world_sets(rng).items():
        half = len(rows) // 2
        write(out / name / "train.jsonl", rows[:half])
        write(out / name / "dev.jsonl", rows[half:])
    rows = triage_rows(rng)
    write(out / "triage" / "train.jsonl", rows[:9])
    write(out / "triage" / "dev.jsonl", rows[9:])


if __name__ == "__main__":
    main()

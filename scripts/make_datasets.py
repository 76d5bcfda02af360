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
    print(f"wrote datasets under {args.out}")


if __name__ == "__main__":
    main()

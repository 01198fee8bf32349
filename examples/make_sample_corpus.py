"""Regenerate examples/sample_corpus/ (committed): a small, deterministic corpus of topic-worded documents.

python examples/make_sample_corpus.py
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

TOPICS = {
    "games": [
        "The new strategy game rewards patient players who build their economy before attacking.",
        "Speedrunners found a glitch that skips the final boss of the classic platformer.",
        "The multiplayer update adds ranked matches, new maps and a spectator mode.",
        "Board game night turned competitive when the card draft came down to the last round.",
    ],
    "sports": [
        "The striker scored twice in the second half to win the derby.",
        "After a long injury, the sprinter returned with a season-best time at the national trials.",
        "The coach praised the defence for holding the league leaders scoreless.",
        "Marathon runners faced strong headwinds along the coastal course this morning.",
    ],
    "finance": [
        "Bond yields rose after the central bank signalled another rate increase.",
        "The company reported quarterly revenue above analyst expectations and raised guidance.",
        "Diversified index funds remain a low-cost option for long-term retirement savings.",
        "Currency markets were volatile as traders weighed the new inflation figures.",
    ],
    "health": [
        "Regular exercise and enough sleep lower the risk of heart disease.",
        "The clinic now offers walk-in vaccinations for the seasonal flu.",
        "Researchers tracked how a diet rich in fibre changes the gut microbiome.",
        "Doctors recommend checking blood pressure at least once a year after forty.",
    ],
    "science": [
        "The telescope captured infrared light from galaxies formed shortly after the big bang.",
        "Chemists designed a catalyst that splits water using only sunlight.",
        "The fossil suggests feathered dinosaurs lived in colder climates than expected.",
        "Physicists measured the particle's mass with unprecedented precision.",
    ],
    "food": [
        "Slow-roast the tomatoes with garlic and thyme before blending the soup.",
        "The bakery's sourdough uses a starter that is more than fifty years old.",
        "Street vendors sell grilled corn brushed with chili butter and lime.",
        "Let the dough rest overnight in the fridge for a deeper flavour.",
    ],
    "travel": [
        "The night train crosses the mountains and arrives at the coast by breakfast.",
        "Book ferry tickets early in summer, when the islands are at their busiest.",
        "The old town is best explored on foot, starting from the cathedral square.",
        "Travellers can renew their passports online in most countries now.",
    ],
}


def make_document(rng: random.Random, doc_id: str) -> dict:
    topic = rng.choice(sorted(TOPICS))
    sentences = [rng.choice(TOPICS[topic]) for _ in range(rng.randint(2, 12))]
    return {"id": doc_id, "text": " ".join(sentences), "source": "sample", "topic_hint": topic}


def main() -> None:
    rng = random.Random(20261125)
    out = Path(__file__).parent / "sample_corpus"
    out.mkdir(exist_ok=True)
    shards = [
        ("shard-000.jsonl", 40),
        ("shard-001.jsonl", 25),
        ("shard-002.jsonl.gz", 30),
        ("news/shard-003.jsonl", 15),
    ]
    for name, count in shards:
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        stem = name.replace("/", "-").split(".")[0]
        lines = "".join(json.dumps(make_document(rng, f"{stem}-{i:03d}")) + "\n" for i in range(count))
        if name.endswith(".gz"):
            path.write_bytes(gzip.compress(lines.encode(), mtime=0))
        else:
            path.write_text(lines)


if __name__ == "__main__":
    main()

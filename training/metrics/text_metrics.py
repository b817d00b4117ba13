"""Text GAN metrics: character n-gram Jensen–Shannon divergence (n = 1…4) against held-out lines with the real
floor beside it, word validity, novelty (verbatim training lines), distinctness and mean length."""
from __future__ import annotations

import math
import random
from collections import Counter

from ..data import load_text


def ngram_counts(lines, n: int) -> Counter:
    c = Counter()
    for s in lines:
        c.update(s[i:i + n] for i in range(len(s) - n + 1))
    return c


def js_divergence(p: Counter, q: Counter) -> float:
    """JSD in nats between two count tables (0 = identical, log 2 = disjoint). An empty table (samples too short to
    hold one n-gram) is as far as can be from a non-empty one: log 2, not the log 2 / 2 its zero row would sum to."""
    tp, tq = sum(p.values()), sum(q.values())
    if not tp or not tq:
        return 0.0 if tp == tq else math.log(2)
    js = 0.0
    for k in set(p) | set(q):
        a, b = p.get(k, 0) / tp, q.get(k, 0) / tq
        m = (a + b) / 2
        js += (a * math.log(a / m) if a else 0) + (b * math.log(b / m) if b else 0)
    return js / 2


def text_report(samples: list[str], reference: list[str], train: list[str]) -> dict:
    """`samples`, `reference` (held-out) and `train` are clean, normalised-then-decoded sentences."""
    m = {}
    for n in range(1, 5):
        m[f"js_{n}gram"] = round(js_divergence(ngram_counts(samples, n), ngram_counts(reference, n)), 4)
    vocab = {w for s in train for w in s.lower().split()}
    words = [w for s in samples for w in s.lower().split()]
    train_set = set(train)
    m["word_validity"] = round(sum(w in vocab for w in words) / max(len(words), 1), 4)
    m["verbatim_training_lines"] = round(sum(s in train_set for s in samples) / max(len(samples), 1), 4)
    m["distinct"] = round(len(set(samples)) / max(len(samples), 1), 4)
    m["mean_length"] = round(sum(map(len, samples)) / max(len(samples), 1), 2)
    return m


def evaluate_text(g, data=None, n: int = 10000) -> dict:
    train, hold = load_text(data, "train"), load_text(data, "holdout")
    samples = g.sample_text(list(range(n)))
    m = text_report(samples, hold.lines, train.lines)
    floor_lines = random.Random(0).sample(train.lines, min(n, len(train.lines)))
    floor = text_report(floor_lines, hold.lines, train.lines)
    for k in range(1, 5):
        m[f"js_{k}gram_floor"] = floor[f"js_{k}gram"]
    m["corpus_mean_length"] = round(sum(map(len, hold.lines)) / len(hold.lines), 2)
    m["text_samples"] = n
    return m

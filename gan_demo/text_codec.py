"""Character-level text codec: normalisation, the vocabulary, encoding to ids and decoding back to clean strings."""
from __future__ import annotations

import re
import unicodedata

PAD, SOS, EOS = "<PAD>", "<SOS>", "<EOS>"
SPECIALS = [PAD, SOS, EOS]
CHARS = " abcdefghijklmnopqrstuvwxyz0123456789.,!?;:'\"()-&$%/"
DEFAULT_VOCAB = SPECIALS + list(CHARS)
MAX_LEN = 64            # positions, markers included

# ASCII folding of typographic characters; invisible characters are dropped.
_FOLD = {"\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'", "\u2032": "'", "`": "'", "\u00b4": "'",
         "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
         "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2015": "-", "\u2212": "-",
         "\u2026": "...", "\u00a0": " ", "\u2060": "", "\u200b": "", "\u200c": "", "\u200d": "", "\ufeff": ""}

_CONTRACTIONS = [(r"\bwon't\b", "will not"), (r"\bcan't\b", "cannot"), (r"\bshan't\b", "shall not"),
                 (r"\bain't\b", "is not"), (r"n't\b", " not"), (r"'re\b", " are"), (r"'m\b", " am"),
                 (r"'ll\b", " will"), (r"'ve\b", " have"), (r"'d\b", " would"),
                 (r"\b(it|that|there|what|he|she|who|where|here|how|let)'s\b",
                  lambda m: m.group(1) + (" us" if m.group(1) == "let" else " is"))]
_PUNCT = re.compile(r'([.,!?;:"()&$%/])')


def normalize(line: str) -> str:
    """ASCII-fold, lower-case, expand contractions, separate punctuation by spaces, squeeze spaces."""
    s = "".join(_FOLD.get(ch, ch) for ch in line)
    s = unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode("ascii").lower()
    for pattern, repl in _CONTRACTIONS:
        s = re.sub(pattern, repl, s)
    s = _PUNCT.sub(r" \1 ", s)
    return re.sub(r"\s+", " ", s).strip()


class TextCodec:
    def __init__(self, vocab: list[str] | None = None, max_len: int = MAX_LEN):
        self.vocab = list(vocab or DEFAULT_VOCAB)
        self.max_len = max_len
        self.index = {t: i for i, t in enumerate(self.vocab)}
        self.pad, self.sos, self.eos = (self.index[t] for t in SPECIALS)

    def __len__(self):
        return len(self.vocab)

    def encode(self, line: str) -> list[int] | None:
        """Normalised line → [SOS, chars…, EOS, PAD…] of max_len ids; None if it does not fit or is empty."""
        s = normalize(line)
        if not s or len(s) + 2 > self.max_len:
            return None
        ids = [self.index[ch] for ch in s if ch in self.index]
        return [self.sos, *ids, self.eos] + [self.pad] * (self.max_len - len(ids) - 2)

    def decode_tokens(self, ids) -> str:
        """Raw view with markers, cut after the first EOS (what the reference shows)."""
        out = []
        for i in ids:
            out.append(self.vocab[int(i)] if int(i) != self.pad else "")
            if int(i) == self.eos:
                break
        return "".join(out)

    def decode(self, ids) -> str:
        """Clean sentence: markers and padding removed, nothing after EOS, punctuation re-attached."""
        chars = []
        for i in ids:
            i = int(i)
            if i == self.eos:
                break
            if i >= len(SPECIALS):
                chars.append(self.vocab[i])
        return detokenize("".join(chars))


def detokenize(s: str) -> str:
    s = re.sub(r"\s+", " ", s).strip()
    s = re.sub(r" ([.,!?;:%)])", r"\1", s)       # no space before closing punctuation
    s = re.sub(r"([($]) ", r"\1", s)             # none after opening
    s = re.sub(r'" (.*?) "', r'"\1"', s)         # quoted spans
    s = re.sub(r" ?/ ?", "/", s)
    return s[:1].upper() + s[1:]

"""The parameter guard: a semantic match is only accepted when the literals are identical.

Embeddings forgive wording, which is what the semantic layer is for, but they
also forgive ``a.csv`` vs ``b.csv``, ``10`` vs ``20`` or ``"foo"`` vs ``"bar"``
(the classic wrong hit). Before a cached answer is served for a paraphrase,
both prompts' literals must agree:

- code blocks and inline code, URLs, e-mail addresses, quoted strings, file
  paths and names, identifiers that look like code (``snake_case``,
  ``camelCase``, ``CONSTANT_CASE``, ``--flags``, ``$VARS``, ``call()``,
  words with digits) — identical multisets;
- numbers (digits, or number words up to the millions), with their unit when
  one follows (``5 MB`` is ``5MB`` and not ``5 GB``) — identical multisets;
- names (capitalised words inside a sentence, acronyms, well-known languages
  and formats) — each side's names must occur in the other prompt;
- negation (``not``, ``never``, ``without``, ...) — present in both or neither;
- contrast words (ascending/descending, add/remove, min/max, ...) — the same
  side of each pair;
- every other content word — the same set, modulo synonyms and framing words
  (``caching.wording``): a plain word that is a parameter (``main`` vs
  ``develop``, ``price`` vs ``cost``) makes the pair a miss.

Everything here is a pure function of the two texts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from caching.vocabulary import CONTRASTS, KNOWN_NAMES, NEGATIONS, NUMBER_WORDS, SCALE_WORDS, STRICT_CONTRASTS, UNITS
from caching.wording import analyse

_CODE_BLOCK = re.compile(r"```[\w+-]*\n?(.*?)```", re.S)
_INLINE_CODE = re.compile(r"`([^`\n]+)`")
_URL = re.compile(r"(?:\b(?:https?|ftp|file|s3|gs|ssh|git)://|\bwww\.)[^\s<>\"'`]+", re.I)
_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_QUOTED = re.compile(
    r"(?<!\w)\"([^\"\n]{1,300})\"(?!\w)|(?<!\w)'([^'\n]{1,300})'(?!\w)|“([^”\n]{1,300})”|‘([^’\n]{1,300})’"
)
_PATH = re.compile(
    r"(?:[A-Za-z]:\\|~/|\.{1,2}/|/)?(?:[\w.@+-]+[/\\])+[\w.@+-]*"  # dir/file, ./x, ~/x, /abs, C:\x
    r"|(?<![\w.])\.[A-Za-z][\w.-]*"  # .env, .gitignore
    r"|\b[\w+-]+(?:\.[\w+-]+)*\.[A-Za-z][A-Za-z0-9]{0,9}\b"  # name.ext, archive.tar.gz
)
_IDENTIFIER = re.compile(
    r"\b[A-Za-z_]\w*_\w+\b"  # snake_case, CONSTANT_CASE
    r"|\b[a-z]+(?:[A-Z][a-z0-9]*)+\b"  # camelCase
    r"|\b[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)+\b"  # PascalCase
    r"|\b[A-Za-z]+\d\w*\b"  # utf8, base64, v2, x86_64
    r"|\b\w+(?=\(\))"  # call()
    r"|(?<![\w-])--?[A-Za-z][\w-]*"  # --flag, -f
    r"|[$@#%][A-Za-z_]\w*"  # $VAR, @decorator, #tag, %macro
)
_NUMBER = re.compile(r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(?:\s?(%|[A-Za-z]{1,7})\b)?")
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]*")
_CAPITALISED = re.compile(r"[A-Z][A-Za-z'’-]*")  # a _WORD match when no letter joins it from the left
_ASCII_LETTERS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_DIGIT = re.compile(r"\d")
_OPENING_APOSTROPHE = re.compile(r"'(?<!\w')")  # where a single-quoted string can start (not "what's")
_TRAILING = ".,;:!?"
LITERALS_CACHED = 512  # prompts whose features are kept (each up to ~60 KB for an 8,000-character prompt)
_SENTENCE_MARKS = frozenset(".!?:;\n*-•(\"'")
_ABBREVIATIONS = frozenset({"e.g", "i.e", "etc", "vs", "a.m", "p.m", "approx"})


@dataclass(frozen=True, slots=True)
class Literals:
    """What must not change between two prompts for one to be answered with the other's answer.

    Everything the comparison needs is computed once per prompt (``literals`` keeps the
    latest prompts' features, so a stored entry's are not recomputed on every lookup).
    """

    exact: tuple[str, ...]  # code, URLs, e-mails, quoted strings, paths, identifiers (sorted multiset)
    numbers: tuple[str, ...]  # canonical numbers with units (sorted multiset)
    names: frozenset[str]  # lower-cased names
    negated: bool
    contrasts: tuple[frozenset[int], ...]  # per contrast group, the classes present
    words: frozenset[str] = frozenset()  # every lower-cased word of the prompt (names may be spelt in lower case)
    content: frozenset[str] = frozenset()  # the wording check's canonical content words of the remaining prose
    request: int = -1  # the kind of answer its first verb asks for (caching.wording.REQUEST_CLASSES), -1 if none


def _take(pattern: re.Pattern[str], text: str, kind: str, found: list[str]) -> str:
    """Collect ``pattern``'s matches as ``kind:value`` and blank them out of ``text``."""

    def keep(match: re.Match[str]) -> str:
        whole = match.group(0)
        value = next((g for g in match.groups() if g is not None), whole)
        if kind == "code":
            value = " ".join(value.split())
        elif kind == "url":
            value = value.rstrip(".,;:!?)]}")
        elif kind == "path" and (value.lower().rstrip(".") in _ABBREVIATIONS or value in ("/", "\\")):
            return whole
        found.append(f"{kind}:{value}")
        # A URL's trailing punctuation belongs to the sentence and stays in the text.
        tail = whole[len(value) :] if kind == "url" else ""
        return " " * (len(whole) - len(tail)) + tail

    return pattern.sub(keep, text)


@lru_cache(maxsize=65536)
def _plain(token: str) -> bool:
    """Whether a whitespace-delimited token can hold no path or identifier: a plain word.

    Plain: ASCII letters, all lower case, all upper case or capitalised, then only
    ``.,;:!?``. Neither ``_PATH`` nor ``_IDENTIFIER`` can match inside such a token
    (each needs a slash, a dot before a letter, ``_``, a digit, ``(``, ``-``, a sigil
    or a lower-to-upper case change), and no match of either spans whitespace, so
    skipping plain tokens finds exactly what the two patterns find in the whole
    text. Every substring of a plain token is plain, which ``_take_in_tokens``
    relies on to locate the other tokens.
    """
    word = token.rstrip(_TRAILING)
    return not word or (word.isascii() and word.isalpha() and (word.islower() or word.isupper() or word[1:].islower()))


@lru_cache(maxsize=16384)
def _token_literals(token: str) -> tuple[str, tuple[str, ...]]:
    """One token with its paths and identifiers blanked, and what was taken (tokens repeat: kept)."""
    found: list[str] = []
    blanked = _take(_IDENTIFIER, _take(_PATH, token, "path", found), "id", found)
    return blanked, tuple(found)


def _take_in_tokens(text: str, found: list[str]) -> str:
    """``_take`` of ``_PATH`` then ``_IDENTIFIER``, run only on the tokens that are not plain words.

    The same result as running both patterns over the whole text (a test checks
    it), at a fraction of the cost on prose: the two patterns try a match at every
    character, most tokens of a prompt are plain words, and a plain token cannot
    contain a token that is not plain, so ``str.find`` from the previous such token
    finds each one where ``split`` saw it.
    """
    tokens = text.split()
    odd = {token for token in set(tokens) if not _plain(token)}
    if not odd:
        return text
    pieces: list[str] = []
    done = 0
    for token in tokens:
        if token not in odd:
            continue
        start = text.find(token, done)
        blanked, taken = _token_literals(token)
        found += taken
        pieces += (text[done:start], blanked)
        done = start + len(token)
    pieces.append(text[done:])
    return "".join(pieces)


def _number_words(words: list[str], word_set: frozenset[str]) -> list[str]:
    """Numbers written as words (``twenty-five``, ``three hundred``) as digit strings."""
    if not any(w.partition("-")[0] in NUMBER_WORDS for w in word_set):
        return []  # a number starts with a number word (scale words only multiply one)
    numbers: list[str] = []
    current: int | None = None
    for i, word in enumerate([*words, ""]):
        parts = word.split("-") if "-" in word else [word]
        values = [NUMBER_WORDS.get(p) for p in parts]
        if word and all(v is not None for v in values):
            current = (current or 0) + sum(v for v in values if v is not None)
        elif word in SCALE_WORDS and current is not None:
            current *= SCALE_WORDS[word]
        else:
            if current is not None:
                numbers.append(
                    f"{current}{word}" if word in UNITS and (word != "in" or i == len(words) - 1) else str(current)
                )
            current = None
    return numbers


def _is_unit(unit: str, after: str) -> bool:
    """Whether ``unit`` after a number is its unit; ``after`` is the text that follows.

    "in" is inches only at the end of a phrase: "django 20 in this project" is a
    version followed by a preposition.
    """
    if unit == "in":
        return not after.lstrip(" \t")[:1].isalpha()
    return unit in UNITS or unit == "%"


def _numbers(text: str) -> list[str]:
    """Numbers written with digits, with their unit. Digits are kept as written (version 3.10 is not 3.1)."""
    found: list[str] = []
    for match in _NUMBER.finditer(text):
        whole, fraction, unit = match.groups()
        value = whole.replace(",", "") + (fraction or "")
        unit = (unit or "").lower()
        found.append(f"{value}{unit}" if _is_unit(unit, text[match.end() :]) else value)
    return found


def _starts_sentence(text: str, start: int) -> bool:
    """Whether the word at ``start`` begins a sentence, line or list item (so its capital says nothing)."""
    i = start - 1
    while i >= 0 and text[i] in " \t":
        i -= 1
    return i < 0 or text[i] in _SENTENCE_MARKS


def _starts_word(text: str, start: int) -> bool:
    """Whether ``_WORD`` scanning ``text`` starts a word at the letter ``start`` (no letter joins it from the left)."""
    i = start - 1
    while i >= 0 and text[i] in "'’-":
        i -= 1
    return i < 0 or text[i] not in _ASCII_LETTERS


def _names(text: str, words: list[str]) -> set[str]:
    names = {w for w in words if w in KNOWN_NAMES}
    for match in _CAPITALISED.finditer(text):
        start = match.start()
        if not _starts_word(text, start):
            continue
        word = match.group(0)
        if word.isupper() and len(word) >= 2 and word.isalpha():
            names.add(word.lower())  # acronyms: JSON, CSV, AWS
        elif word.replace("’", "'").partition("'")[0] != "I" and not _starts_sentence(text, start):  # I, I'm, I've
            names.add(word.lower())
    return names


def _words(text: str, lowered: str, *, apostrophes: bool = True) -> list[str]:
    """``_WORD``'s matches in ``text``, lower-cased (typographic apostrophes as ``'`` when ``apostrophes``)."""
    if text.isascii():  # lower-casing keeps every match where it was (not so for all of Unicode)
        return _WORD.findall(lowered)
    if apostrophes:
        return [w.lower().replace("’", "'") for w in _WORD.findall(text)]
    return [w.lower() for w in _WORD.findall(text)]


def extract_literals(text: str) -> Literals:
    """The literals of one prompt (and the words and content words the comparison needs)."""
    found: list[str] = []
    rest = text
    if "`" in rest:
        rest = _take(_CODE_BLOCK, rest, "code", found)
        rest = _take(_INLINE_CODE, rest, "code", found)
    if "://" in rest or "www." in rest.lower():
        rest = _take(_URL, rest, "url", found)
    if "@" in rest:
        rest = _take(_EMAIL, rest, "email", found)
    if '"' in rest or "“" in rest or "‘" in rest or ("'" in rest and _OPENING_APOSTROPHE.search(rest)):
        rest = _take(_QUOTED, rest, "quoted", found)
    rest = _take_in_tokens(rest, found)
    lowered = rest.lower()
    words = _words(rest, lowered)
    word_set = frozenset(words)
    numbers = (_numbers(rest) if _DIGIT.search(rest) else []) + _number_words(words, word_set)
    contrasts = tuple(frozenset(i for i, cls in enumerate(group) if cls & word_set) for group in CONTRASTS)
    content, request = analyse(rest, lowered)
    return Literals(
        exact=tuple(sorted(found)),
        numbers=tuple(sorted(numbers)),
        names=frozenset(_names(rest, words)),
        negated=bool(word_set & NEGATIONS) or "n't" in lowered,
        contrasts=contrasts,
        words=word_set if rest == text and text.isascii() else frozenset(_words(text, text.lower(), apostrophes=False)),
        content=content,
        request=request,
    )


@lru_cache(maxsize=LITERALS_CACHED)
def literals(text: str) -> Literals:
    """``extract_literals``, remembered for the latest prompts.

    A lookup compares the new prompt with up to ``caching.store.CANDIDATES``
    stored prompts: the new prompt is analysed once, and a stored prompt only the
    first time this process meets it (when it stored the entry itself, that was
    the lookup that missed just before).
    """
    return extract_literals(text)


def compare(a: Literals, b: Literals, *, wording: bool = True) -> str:
    """Why a prompt with literals ``b`` must not be answered with the answer to ``a`` ('' when the same)."""
    if a.exact != b.exact:  # sorted multisets
        return "literals"
    if a.numbers != b.numbers:
        return "numbers"
    if not (a.names <= b.words | b.names and b.names <= a.words | a.names):
        return "names"
    if a.negated != b.negated:
        return "negation"
    for strict, mine, theirs in zip(STRICT_CONTRASTS, a.contrasts, b.contrasts, strict=True):
        if mine != theirs and (strict or (mine and theirs)):
            return "contrast"
    if wording and a.request != b.request and a.request >= 0 and b.request >= 0:
        return "request"
    if wording and a.content != b.content:
        return "wording"
    return ""


def mismatch(cached: str, new: str, *, wording: bool = True) -> str:
    """Why ``new`` must not be answered with ``cached``'s answer ('' when they ask the same).

    ``wording=False`` skips the content-word check (benchmarks compare with and without it).
    """
    return compare(literals(cached), literals(new), wording=wording)


def same_parameters(cached: str, new: str) -> bool:
    """Whether the two prompts agree on every literal (the semantic layer may then match them)."""
    return not mismatch(cached, new)

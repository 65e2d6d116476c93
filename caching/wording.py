"""Lexical alignment: two prompts may share an answer only if they use the same content words.

The literal checks in ``caching.guard`` catch parameters that look like
parameters (paths, numbers, identifiers, quoted strings). A plain word can be
a parameter too — rebase onto ``develop`` rather than ``main``, sum the
``cost`` column rather than ``price`` — and embeddings score such pairs as
near-identical. So after the literals agree, the remaining words of both
prompts are reduced to their *content*:

1. multi-word phrases with one meaning are rewritten to one canonical form
   ("give me a summary of" → "summarise", "what's the command to" → "how");
2. function words (articles, pronouns, prepositions, auxiliaries, politeness)
   and *framing* words (request verbs such as explain, show, list, write,
   fetch, and generic nouns such as code, command, steps) are dropped: their
   presence or absence does not change the task;
3. each remaining word is stemmed (a small suffix stripper, irregular forms
   mapped) and mapped to its synonym group (delete/remove/drop, directory/
   folder, dev/development, …).

The two sets of canonical content words must be equal. Any word one prompt has
and the other lacks — a substitution, an added qualifier ("hidden files"), a
dropped one — makes the pair a miss unless the word lists above explain it.
Precision therefore holds by construction; recall (how many paraphrases still
hit) depends on the phrase, framing and synonym lists, and is measured in
``bench/cache`` (``docs/benchmarks-cache.md``).

Pure functions; a few microseconds per short prompt.
"""

from __future__ import annotations

import re
from functools import lru_cache

from caching.vocabulary import CONTRASTS, NEGATIONS, NUMBER_WORDS, SCALE_WORDS, UNITS

_TOKEN = re.compile(r"[a-z][a-z'’-]*|\d[\d,.]*")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Rewritten before tokenising (longest first), so one meaning has one spelling.
PHRASES: dict[str, str] = {
    "give me a summary of": "summarise",
    "give a summary of": "summarise",
    "provide a summary of": "summarise",
    "write a summary of": "summarise",
    "make a summary of": "summarise",
    "a summary of": "summarise",
    "point out": "list",
    "figure out": "find",
    "find out": "find",
    "look for": "find",
    "look up": "find",
    "search for": "find",
    "check for": "find",
    "scan for": "find",
    "laid out": "layout",
    "set up": "setup",
    "clean up": "cleanup",
    "spin up": "start",
    "boot up": "start",
    "fire up": "start",
    "shut down": "stop",
    "tear down": "teardown",
    "roll back": "rollback",
    "sign in": "login",
    "log out": "logout",
    "sign out": "logout",
    "test suite": "tests",
    "unit tests": "tests",
    "unit test": "tests",
    "what's the command to": "how",
    "what is the command to": "how",
    "what command": "how",
    "which command": "how",
    "what are the steps to": "how",
    "what steps": "how",
    "what's the way to": "how",
    "what is the way to": "how",
    "what's the best way to": "how",
    "is there a way to": "how",
    "how can i": "how",
    "how do i": "how",
    "how do you": "how",
    "how should i": "how",
    "how would i": "how",
    "how to": "how",
    "which module": "where",
    "which file": "where",
    "what file": "where",
    "which location": "where",
    "what location": "where",
    "where can i find": "where",
    "where do i find": "where",
    "in which file": "where",
    "how many": "count",
    "number of": "count",
    "the count of": "count",
    "get rid of": "remove",
    "take out": "remove",
    "up to date": "current",
    "exchange rate": "rate",
    "on top of": "onto",
    "in the past": "in the last",
    "over the past": "in the last",
    "make sure": "ensure",
    "based on": "by",
    "according to": "following",
    "in order to": "to",
    "roll out": "deploy",
    "per month": "monthly",
    "each month": "monthly",
    "a month": "monthly",
    "every month": "monthly",
    "walk me through": "explain",
    "speed up": "speedup",
    "walk through": "explain",
    "what makes": "why",
    "what causes": "why",
    "take care of": "care",
    "taking care of": "care",
    "care for": "care",
    "caring for": "care",
}
_BY_LENGTH = tuple(sorted(PHRASES, key=len, reverse=True))  # the alternation tries the longest first
_PHRASE_PATTERN = re.compile(r"\b(?:" + "|".join(re.escape(p) for p in _BY_LENGTH) + r")\b")
_RUN = re.compile(r"\w+")
# For ASCII text, str.translate to spaces then split gives the \w+ runs at C speed.
_NOT_WORD = {c: " " for c in range(128) if not (chr(c).isalnum() or chr(c) == "_")}
# A phrase can only match where each of its \w+ runs is a whole \w+ run of the text (it starts and ends
# at word boundaries, and its own spaces and apostrophes delimit the runs inside it).
_PHRASE_RUNS = tuple((phrase, frozenset(_RUN.findall(phrase))) for phrase in _BY_LENGTH)


@lru_cache(maxsize=1024)
def _phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """``\\b(?:phrase|...)\\b`` written so the regex engine can skip to the phrases' first letters.

    Every phrase starts with a letter, so the leading ``\\b`` is "no word character
    before it"; checked by a lookbehind after that letter, the pattern starts with
    literals, and the engine scans for their first characters instead of trying
    every position.
    """
    return re.compile("(?:" + "|".join(re.escape(p[0]) + r"(?<!\w.)" + re.escape(p[1:]) for p in phrases) + r")\b")


def rewrite_phrases(lowered: str) -> str:
    """Multi-word phrases replaced by their canonical form (``_PHRASE_PATTERN.sub``, faster).

    Only the phrases whose words all occur in the text are tried: the others cannot
    match, so the leftmost-longest result is the same as with every phrase.
    """
    runs = frozenset(lowered.translate(_NOT_WORD).split() if lowered.isascii() else _RUN.findall(lowered))
    candidates = tuple(phrase for phrase, needed in _PHRASE_RUNS if needed <= runs)
    if not candidates:
        return lowered
    return _phrase_pattern(candidates).sub(lambda m: f" {PHRASES[m.group(0)]} ", lowered)


STOPWORDS = _words(
    "a an the this that these those it its it's itself there here them they their theirs we us our ours you "
    "your yours i me my mine he him his she her hers one ones "
    "is are was were be been being am do does did doing done have has had having will would shall should "
    "can could may might must let let's lets "
    "of in on at to from into onto for with within by about as via using through over under per than then "
    "during across throughout until till since toward towards among between around behind beside much many "
    "and or but so if when while also just only very really quite too either neither both nor "
    "please kindly thanks thank hi hello hey "
    "what what's whats which that's who whom whose whether "
    "any some such same own other another new existing current "
    "up out off down away again now currently still already "
    "s t d ll ve re m"
)
# Words that frame a request without changing what is asked: dropping or swapping them keeps the task.
FRAMING = _words(
    "explain explanation describe tell show display print list give provide "
    "write generate produce fetch get retrieve obtain find locate identify highlight mention see view "
    "help need want like wish try attempt able quickly quick briefly brief short simple simply detailed "
    "change set make go work works working handle handled use used "
    "code command commands steps step way ways approach procedure something thing things stuff "
    "suite module file files "
    "look check tell know understand how what which "
    "compose draft suggest propose recommend estimate grant access permission permissions role "
    "branch region environment service services column dataframe resource resources instance "
    "convert turn transform tips all every each entire whole good best nice purpose past remote "
    "schedule book arrange setup query take plot draw chart graph create make provision worth app application "
    "project implement review"
)
# Stems that mean the same thing in a request; the first is the canonical form.
SYNONYMS: tuple[str, ...] = (
    "summar summarise summarize summary summarization summarisation recap",
    "delet delete remove erase drop purge rm",
    "fix repair correct patch",
    "start begin launch boot run-up",
    "stop halt terminate kill",
    "directory folder dir",
    "rename name naming renaming",
    "development dev",
    "production prod",
    "repository repo",
    "configuration config conf configure",
    "database db",
    "documentat documentation document doc docs documented",
    "environment env",
    "authentic authentication authenticate auth",
    "authoriz authorization authorisation authorize authorise authz",
    "application app",
    "information info",
    "argument arg args",
    "parameter param params",
    "function func fn",
    "message msg",
    "package pkg",
    "library lib",
    "number num",
    "layout structure organisation organization organise organize arrange arrangement",
    "anomal anomaly anomalies anomalous outlier irregularity",
    "count tally",
    "compute calculate calc",
    "variabl variable var",
    "annotat annotate annotation hint hints",
    "copy clone duplicate",
    "move migrate relocate transfer",
    "missing null nan na",
    "restart reboot",
    "rewrite port translat translate translation",
    "care caring",
    "monthly",
    "test tests testing",
    "divid divide split",
    "password passwd",
    "modified modify changed touched edit edited",
    "optim optimise optimize faster speedup",
)
IRREGULAR = {
    "written": "write",
    "wrote": "write",
    "ran": "run",
    "went": "go",
    "gone": "go",
    "goes": "go",
    "done": "do",
    "did": "do",
    "does": "do",
    "made": "make",
    "built": "build",
    "found": "find",
    "got": "get",
    "gotten": "get",
    "gave": "give",
    "given": "give",
    "shown": "show",
    "laid": "lay",
    "sent": "send",
    "took": "take",
    "taken": "take",
    "broke": "break",
    "broken": "break",
    "chose": "choose",
    "chosen": "choose",
    "held": "hold",
    "kept": "keep",
    "knew": "know",
    "known": "know",
    "met": "meet",
    "paid": "pay",
    "read": "read",
    "said": "say",
    "sold": "sell",
    "spent": "spend",
    "thought": "think",
    "told": "tell",
    "understood": "understand",
    "children": "child",
    "people": "person",
    "men": "man",
    "women": "woman",
    "data": "data",
    "indices": "index",
    "indexes": "index",
    "analyses": "analysis",
}
# Longest first: the first suffix that leaves a stem of at least MIN_STEM letters is stripped.
SUFFIXES = (
    "isations",
    "izations",
    "isation",
    "ization",
    "ations",
    "ation",
    "ising",
    "izing",
    "ised",
    "ized",
    "ises",
    "izes",
    "ise",
    "ize",
    "ating",
    "ated",
    "ates",
    "ate",
    "ments",
    "ment",
    "ings",
    "ing",
    "ies",
    "ied",
    "ions",
    "ion",
    "ly",
    "es",
    "ed",
    "s",
)
MIN_STEM = 3
_KEEP_S = ("ss", "us", "is", "os")
_ES_PLURAL = ("s", "x", "z", "ch", "sh")  # boxes, classes, branches: here es is the suffix


def stem(word: str) -> str:
    """A light, deterministic stem: irregular forms mapped, one inflectional suffix stripped."""
    word = word.replace("’", "'").strip("'-")
    if word.endswith("'s"):
        word = word[:-2]
    if word in IRREGULAR:
        return IRREGULAR[word]
    for suffix in SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= MIN_STEM:
            if suffix == "s" and word.endswith(_KEEP_S):
                continue
            if suffix == "es" and not word[:-2].endswith(_ES_PLURAL):
                continue  # pages, times: the plural of page, time (only s is the suffix)
            word = word[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    if len(word) > MIN_STEM + 1 and word.endswith("e"):
        word = word[:-1]
    if len(word) > MIN_STEM and word[-1] == word[-2] and word[-1] not in "aeiouls":
        word = word[:-1]  # running -> runn -> run
    return word


def _build_synonyms() -> dict[str, str]:
    table: dict[str, str] = {}
    for group in SYNONYMS:
        words = group.split()
        canonical = words[0]
        for word in words:
            table[word] = canonical
            table[stem(word)] = canonical
    return table


SYNONYM_OF = _build_synonyms()
# What a request asks for, by the verb it starts with. These verbs are framing words (dropping one keeps
# the task: "What does X do?" = "Explain X"), but two prompts that both start by naming a kind of answer
# must name the same one: "Explain X" is not "Write X", "Show the config" is not "Change the config".
# Only the first word after a lead-in counts ("Write a query to find rows" asks for a query), and only
# these exact forms; ambiguous verbs (give, get, make, tell, help, suggest) belong to no class.
REQUEST_CLASSES: tuple[str, ...] = (
    "explain describe clarify",  # an explanation
    "write generate produce create compose draft implement",  # a new artefact
    "change set convert transform turn modify",  # the given thing, changed
    "show display print list fetch retrieve find locate identify review",  # something that exists, found
)
REQUEST_CLASS = {word: index for index, words in enumerate(REQUEST_CLASSES) for word in words.split()}
LEAD_IN = _words("please kindly can could would will you i we me us let's lets help how just quickly now also then")


def request_class(tokens: list[str]) -> int:
    """The kind of answer a prompt starts by asking for (index in ``REQUEST_CLASSES``), or -1."""
    for token in tokens:
        if token not in LEAD_IN:
            return REQUEST_CLASS.get(token, -1)
    return -1


# Words other checks of the guard compare: negations (present in both or neither) and numbers.
_ELSEWHERE = NEGATIONS | frozenset(NUMBER_WORDS) | frozenset(SCALE_WORDS)
# Contrast words (ascending/descending, add/remove, …) stand for their class: the guard compares the
# classes, so two words of one class are the same content here.
CONTRAST_CLASS = {
    word: f"~{group}.{index}"
    for group, classes in enumerate(CONTRASTS)
    for index, cls in enumerate(classes)
    for word in cls
}
_NUMBERISH = frozenset(NUMBER_WORDS) | frozenset(SCALE_WORDS)
# Compared with the number before them by the guard ("7 days"), or part of it ("7th"): not words there.
_AFTER_NUMBER = UNITS | frozenset({"st", "nd", "rd", "th"})
_FRAMING_STEMS = frozenset(stem(w) for w in FRAMING) | FRAMING
_STOP_STEMS = frozenset(stem(w) for w in STOPWORDS) | STOPWORDS


def _contrasted(word: str) -> str:
    return CONTRAST_CLASS.get(word, word)


@lru_cache(maxsize=65536)
def canonical(word: str) -> str | None:
    """The canonical content form of ``word`` (lower case), or None for a function or framing word."""
    if word in STOPWORDS or word in FRAMING or word in _ELSEWHERE:
        return None
    if word in CONTRAST_CLASS:
        return CONTRAST_CLASS[word]  # one token per class: "larger" and "bigger" are the same content
    if word in SYNONYM_OF:
        return _contrasted(SYNONYM_OF[word])
    stemmed = stem(word)
    if stemmed in SYNONYM_OF:
        return _contrasted(SYNONYM_OF[stemmed])
    if stemmed in _STOP_STEMS or stemmed in _FRAMING_STEMS:
        return None
    return stemmed


@lru_cache(maxsize=65536)
def _forms(token: str) -> tuple[str, ...]:
    """The canonical content forms of one token's hyphenated parts."""
    return tuple(form for part in token.split("-") if part and (form := canonical(part.strip("'"))))


def content_words(text: str, lowered: str | None = None) -> frozenset[str]:
    """The canonical content words of a prompt's remaining text (literals already removed by the guard).

    ``lowered`` is ``text.lower()`` when the caller has it already.
    """
    return analyse(text, lowered)[0]


def analyse(text: str, lowered: str | None = None) -> tuple[frozenset[str], int]:
    """``content_words`` and the ``request_class`` of a prompt's remaining text."""
    lowered = rewrite_phrases((text.lower() if lowered is None else lowered).replace("’", "'"))
    tokens = _TOKEN.findall(lowered)
    unique = set(tokens)
    found: set[str] = set()
    for token in unique - _NUMBERISH - _AFTER_NUMBER:
        if not token[0].isdigit():
            found.update(_forms(token))
    units = {token for token in unique & _AFTER_NUMBER if _forms(token)}
    if units:  # "7 days": a unit right after a number is compared with it by the guard, elsewhere it is a word
        previous = ""
        for token in tokens:
            if token in units and not (previous and (previous[0].isdigit() or previous in _NUMBERISH)):
                found.update(_forms(token))
            previous = token
    return frozenset(found), request_class(tokens)

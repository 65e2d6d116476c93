"""The parameter guard: paraphrases pass, any changed literal fails (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from caching import guard, wording
from caching.guard import extract_literals, mismatch, same_parameters

PARAPHRASES = [
    ("Summarise a.csv", "Give me a summary of a.csv"),
    ("Show the first 10 lines of server.log", "Print the first ten lines of server.log"),
    ("Rewrite this function in Python", "Please rewrite the function using Python"),
    ("What's the capital of France?", "What is the capital of France?"),
    ("Explain what `git rebase -i` does", "What does `git rebase -i` do?"),
    (
        "Fetch https://example.com/api/v1/users and list the names.",
        "List the names from https://example.com/api/v1/users",
    ),
    ('Rename the variable "count" to "total"', 'Change the variable name "count" to "total"'),
    ("Why does parse_config() raise KeyError?", "Why is parse_config() raising KeyError?"),
    ("Set the timeout to 30 seconds", "Change the timeout to thirty seconds"),
    ("Compress logs older than 7 days", "Compress the logs that are older than seven days"),
    ("List files larger than 5MB in ./data", "Which files in ./data are larger than 5 MB?"),
    ("How do I upgrade django 20 in this project?", "Upgrade the project from django 20"),  # "in" is not inches
]
PARAMETER_CHANGES = [
    ("Summarise a.csv", "Summarise b.csv", "literals"),
    ("Show the first 10 lines of server.log", "Show the first 20 lines of server.log", "numbers"),
    ("Set the timeout to 30 seconds", "Set the timeout to 30 minutes", "numbers"),
    ("List files larger than 5MB", "List files larger than 5GB", "numbers"),
    ("Show the first ten lines", "Show the first eleven lines", "numbers"),
    ('Rename "count" to "total"', 'Rename "count" to "sum"', "literals"),
    ("Fetch https://example.com/a", "Fetch https://example.com/b", "literals"),
    ("Open /etc/nginx/nginx.conf", "Open /etc/nginx/sites.conf", "literals"),
    ("Why does parse_config() fail?", "Why does load_config() fail?", "literals"),
    ("What does userId mean here?", "What does userName mean here?", "literals"),
    ("Run it with --verbose", "Run it with --quiet", "literals"),
    ("Explain ```x = 1```", "Explain ```x = 2```", "literals"),
    ("Email alice@example.com", "Email bob@example.com", "literals"),
    ("Rewrite this in Python", "Rewrite this in Rust", "names"),
    ("Convert the table to JSON", "Convert the table to YAML", "names"),
    ("Sort the rows ascending", "Sort the rows descending", "contrast"),
    ("Use recursion", "Do not use recursion", "negation"),
    ("Return the largest value", "Return the smallest value", "contrast"),
    ("Read the value of $HOME", "Read the value of $PATH", "literals"),
    ("Deploy version v2 of the API", "Deploy version v3 of the API", "literals"),
    ("Upgrade to Python 3.1", "Upgrade to Python 3.10", "numbers"),  # digits as written: versions
    ("Make it 5 in wide", "Make it 5 cm wide", "numbers"),
]


@pytest.mark.parametrize(("cached", "new"), PARAPHRASES)
def test_it_accepts_paraphrases_with_the_same_literals(cached: str, new: str) -> None:
    assert mismatch(cached, new) == ""
    assert mismatch(new, cached) == ""


@pytest.mark.parametrize(("cached", "new", "reason"), PARAMETER_CHANGES)
def test_it_rejects_a_changed_literal(cached: str, new: str, reason: str) -> None:
    assert mismatch(cached, new) == reason
    assert not same_parameters(new, cached)


def test_it_extracts_every_kind_of_literal() -> None:
    literals = extract_literals(
        "Read ./src/app/main.py and .env, run `make test` --verbose, see https://x.io/a?b=1. "
        'Name it "report" and count to twenty-five thousand, then 3,000 items of 5MB in JSON.'
    )
    assert literals.exact == (
        "code:make test",
        "id:--verbose",
        "path:./src/app/main.py",
        "path:.env",
        "quoted:report",
        "url:https://x.io/a?b=1",
    )
    assert literals.numbers == ("25000", "3000", "5mb")
    assert "json" in literals.names and "count" not in literals.names


def test_i_and_its_contractions_are_not_names() -> None:
    assert extract_literals("How do I merge main into the branch I'm on, as I’ve done?").names == frozenset()


def test_it_compares_numbers_as_a_multiset() -> None:
    assert same_parameters("Lines 5 to 10 of a.txt", "From a.txt, lines 5 to 10")
    assert not same_parameters("Lines 5 to 10 of a.txt", "Lines 5 to 5 of a.txt")


def test_a_sentence_initial_capital_is_not_a_name() -> None:
    assert same_parameters("Python script to parse logs", "Write a Python script that parses logs")
    assert same_parameters("Please summarise this", "Summarise this")


# -- the fast paths give exactly what the plain patterns give -------------------------------------

PIECES = [
    "foo", "Bar", "JSON", "ABc", "I", "x.y", "a/b", "C:\\x", "./x", "~/p", ".env", "e.g.", "i.e.", "--flag", "-f",
    "$HOME", "call()", "fooBar", "FooBar", "v2", "5MB", "twenty-five", "three hundred", "don't", "-'Abc", "x'Y",
    "Hello.", "end.", "?x", "a.b.c", "snake_case", "1,000.50", "7 days", "www.Example.com", "http://x.io/a.",
    "a@b.co", "'q'", '"qq"', "`c`", "café", "İx", "’s", "how do i", "a summary of", "What’s the command to",
    "on top of", "x-how to", "up to date", "number of",
]  # fmt: skip
TEXTS = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(alphabet="aZ _-./\\:;,!?'’\"`()$@#%09\n\té~+“”*", max_size=4)),
    max_size=14,
).map(lambda parts: " ".join(parts))


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_tokenwise_paths_and_identifiers_equal_the_whole_text_patterns(text: str) -> None:
    whole: list[str] = []
    expected = guard._take(guard._IDENTIFIER, guard._take(guard._PATH, text, "path", whole), "id", whole)
    fast: list[str] = []
    assert guard._take_in_tokens(text, fast) == expected
    assert sorted(fast) == sorted(whole)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_phrase_rewriting_equals_the_full_alternation(text: str) -> None:
    lowered = text.lower()
    expected = wording._PHRASE_PATTERN.sub(lambda m: f" {wording.PHRASES[m.group(0)]} ", lowered)
    assert wording.rewrite_phrases(lowered) == expected


def test_a_prompt_is_analysed_once_per_process() -> None:
    guard.literals.cache_clear()
    guard.mismatch("Rebase onto main", "Rebase my branch onto main")
    guard.mismatch("Rebase onto develop", "Rebase my branch onto main")
    info = guard.literals.cache_info()
    assert (info.misses, info.hits) == (3, 1)

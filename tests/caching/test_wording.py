"""The wording check: a plain word that is a parameter makes a miss; paraphrases still hit (pure)."""

from __future__ import annotations

import pytest

from bench.cache.labelled import generate, load
from caching.guard import mismatch
from caching.wording import content_words, stem

PLAIN_WORD_CHANGES = [
    ("Rebase my branch onto main", "Rebase my branch onto develop"),
    ("Sum the price column of orders", "Sum the cost column of orders"),
    ("Deploy the checkout service to staging", "Deploy the checkout service to production"),
    ("Grant alice the editor role", "Grant bob the editor role"),
    ("Create a bucket in the frankfurt region", "Create a queue in the frankfurt region"),
    ("Convert 40 miles to kilometers", "Convert 40 miles to meters"),
    ("Schedule a meeting with carol on monday", "Schedule a meeting with carol on friday"),
    ("List the files", "List the hidden files"),  # an added qualifier is a change too
    ("Show sales by day", "Show sales by month"),  # a unit without a number
    ("Provision a bucket", "Delete a bucket"),
    ("Make the query faster", "Make the query use less memory"),
    ("Review the pull request", "Merge the pull request"),
]
PARAPHRASES = [
    ("How do I rebase my feature branch onto main?", "Rebase my feature branch onto main"),
    ("Deploy the billing service to sandbox", "How do I deploy billing to the sandbox environment?"),
    ("Give me a summary of the march sales report", "Summarise the sales report for march"),
    ("Remove every unused bucket in tokyo", "Delete the unused bucket resources in tokyo"),
    ("What's the command to run the test suite?", "How can I run the tests?"),
    ("Show the first 10 lines of server.log", "Print the first ten lines of server.log"),
    ("Compose a short poem about cats", "Write a short poem about cats"),
    # issue 14, from the older pair set's failures (even families only: the odd ones stay held out)
    ("Show 3 items per page", "Use pages of 3 items"),  # a plural that is the word plus s (pages, times)
    ("Write a function that returns the 7th Fibonacci number", "Write a function returning Fibonacci number 7"),
    ("Walk me through `ls -la`", "Explain `ls -la`"),
    ("What makes compute_total slow?", "Why is compute_total slow?"),
    ("Implement a function returning Fibonacci number 7", "Write a function that returns the 7th Fibonacci number"),
    ("Review schema.sql and point out bugs", "Find the bugs in schema.sql"),
    ("Optimise `SELECT 1`", "Make `SELECT 1` faster"),
]


@pytest.mark.parametrize(("cached", "new"), PLAIN_WORD_CHANGES)
def test_a_changed_plain_word_is_a_miss(cached: str, new: str) -> None:
    assert mismatch(cached, new) != ""
    assert mismatch(new, cached) != ""
    assert mismatch(cached, new, wording=False) in ("", "numbers", "contrast")  # what the literal checks saw


@pytest.mark.parametrize(("cached", "new"), PARAPHRASES)
def test_paraphrases_still_agree(cached: str, new: str) -> None:
    assert mismatch(cached, new) == ""
    assert mismatch(new, cached) == ""


REQUEST_CHANGES = [
    ("Explain the parse function", "Write the parse function"),
    ("Review the login handler", "Implement the login handler"),
    ("Show the config", "Change the config"),
    ("Create a bucket", "Show the bucket"),
    ("Please explain the parse function", "How do I write the parse function?"),
]


@pytest.mark.parametrize(("cached", "new"), REQUEST_CHANGES)
def test_another_kind_of_answer_is_a_miss(cached: str, new: str) -> None:
    """Request verbs are framing words, but two that ask for different kinds of answer are a change."""
    assert mismatch(cached, new) == mismatch(new, cached) == "request"


def test_a_request_verb_counts_only_where_the_request_starts() -> None:
    assert mismatch("What does the login handler do?", "Explain the login handler") == ""
    assert mismatch("Give me 10 random passwords", "Generate 10 random passwords") == ""
    assert (
        mismatch("List the yaml files changed in the last 3 days", "Find every yaml file modified in the last 3 days")
        == ""
    )


def test_an_ordinal_is_its_number() -> None:
    assert mismatch("Return the 7th Fibonacci number", "Return the 8th Fibonacci number") == "numbers"


def test_inflections_share_a_stem() -> None:
    assert stem("pages") == stem("page") and stem("times") == stem("time") and stem("names") == stem("name")
    assert stem("boxes") == stem("box") and stem("branches") == stem("branch") and stem("classes") == stem("class")
    assert stem("running") == stem("run") and stem("logging") == stem("logs") == stem("log")
    assert stem("created") == stem("creates") == stem("create")
    assert content_words("the deployments were written") == content_words("deployment write")


def test_no_parameter_change_of_the_labelled_set_passes_the_guard() -> None:
    """Precision by construction: the guard alone (any similarity) refuses every labelled change."""
    changes = [p for p in load() if not p.should_hit]
    assert len(changes) >= 600 and sum(p.plain_word for p in changes) * 3 >= len(changes)
    accepted = [(p.cached, p.new) for p in changes if mismatch(p.cached, p.new) == ""]
    assert accepted == []


def test_the_committed_labelled_set_is_what_the_generator_makes() -> None:
    pairs = load()
    assert pairs == generate()
    assert sum(p.should_hit for p in pairs) >= 600
    assert len({p.domain for p in pairs}) >= 8

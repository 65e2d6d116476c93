"""Word lists shared by the parameter guard and the wording check (``caching.guard``, ``caching.wording``)."""

from __future__ import annotations


def _listed(words: str) -> list[str]:
    """Whitespace-separated words, in order."""
    return words.split()


def _split(words: str) -> frozenset[str]:
    """Whitespace-separated words, as a set."""
    return frozenset(words.split())


UNITS = _split(
    "b kb mb gb tb pb kib mib gib tib bytes byte bit bits ms us ns s sec secs second seconds min mins minute "
    "minutes h hr hrs hour hours d day days week weeks month months year years px em rem pt k m x kg g mg km "
    "cm mm mi ft in usd eur gbp tokens token rpm tpm rps qps"
)
NUMBER_WORDS = {
    word: value
    for value, word in enumerate(
        _listed(
            "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
            "sixteen seventeen eighteen nineteen"
        )
    )
}
TENS = _listed("twenty thirty forty fifty sixty seventy eighty ninety")
NUMBER_WORDS |= {word: 10 * (i + 2) for i, word in enumerate(TENS)}
SCALE_WORDS = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
KNOWN_NAMES = _split(
    "python javascript typescript java kotlin swift rust golang ruby php perl scala haskell elixir erlang "
    "clojure lua dart julia matlab c++ c# cpp csharp fortran cobol bash zsh powershell sql "
    "postgres postgresql mysql sqlite redis mongodb json yaml yml toml xml csv tsv html css scss markdown "
    "parquet avro protobuf graphql grpc docker kubernetes terraform ansible react vue angular svelte "
    "django flask fastapi rails nodejs deno linux windows macos ios android utc gmt"
)
NEGATIONS = _split(
    "not no never none nothing without except excluding exclude don't doesn't didn't isn't aren't wasn't "
    "weren't won't can't cannot shouldn't mustn't avoid skip ignore dont doesnt isnt cant wont"
)
# Each group lists mutually exclusive classes of words. Two prompts conflict when they use different
# classes of a group; for a strict group (marked "!") also when only one of them uses the group at all
# ("sort" vs "sort descending"). Loose groups hold everyday verbs ("write a script", "read this") whose
# absence means nothing.
_GROUPS = (
    ("!ascending asc increasing", "descending desc decreasing reverse reversed"),
    (
        "increase bigger larger largest biggest more most max maximum highest higher longest top greatest",
        "decrease lower smaller smallest less least fewer fewest min minimum lowest shortest bottom",
    ),
    ("add insert append create", "remove delete drop strip"),
    ("before earlier older oldest first prior", "after later newer newest latest last final"),
    ("!encode encrypt compress serialize serialise", "decode decrypt decompress deserialize deserialise"),
    ("!enable enabled activate", "disable disabled deactivate"),
    ("!uppercase upper capitalize capitalise", "lowercase lower"),
    ("!true yes", "false"),
    ("import imports", "export exports"),
    ("input inputs", "output outputs"),
    ("read reads reading", "write writes writing"),
    ("upload uploads", "download downloads"),
    ("push", "pull"),
    ("open", "close"),
    ("start begin beginning", "stop end ending finish"),
    ("left", "right"),
    ("horizontal horizontally", "vertical vertically"),
    ("row rows", "column columns"),
    ("include including", "exclude excluding"),
    ("public", "private"),
    ("!sync synchronous synchronously", "async asynchronous asynchronously"),
    ("server", "client"),
    ("frontend", "backend"),
    ("valid", "invalid"),
    ("success successful", "failure failed failing error errors"),
    ("merge", "split"),
    ("!minify", "prettify beautify"),
    ("!zip compress", "unzip extract"),
)
CONTRASTS: tuple[tuple[frozenset[str], ...], ...] = tuple(
    tuple(_split(cls.lstrip("!")) for cls in group) for group in _GROUPS
)
STRICT_CONTRASTS: tuple[bool, ...] = tuple(group[0].startswith("!") for group in _GROUPS)

"""The labelled set for cache precision: paraphrases that must hit, parameter changes that must miss.

Generated from templates (``python -m bench.cache.labelled`` rewrites
``bench/cache/data/labelled_pairs.jsonl``; the seed is fixed, so the file is
reproducible and committed). Each family is one task in one domain, phrased
three or four ways, with slots for its parameters. Slots are either *plain
words* (a branch ``main``, a column ``price``, an environment ``staging``, a
region, a weekday, a person) or literals the old guard already recognised
(numbers, versions, paths). From each family:

- **hit** pairs: two different phrasings with the same slot values;
- **change** pairs: one slot given another value, the phrasing either the
  same (the hardest case for embeddings) or different. Plain-word slots are
  changed with priority, so single plain-word substitutions are well over a
  third of the changes (the issue's bar).

Slot values are realistic vocabulary of each domain; they were not filtered
against the guard's word lists (a value that happens to be a framing word
shows up as a wrong hit, as it would in production).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

DATA = Path(__file__).resolve().parent / "data" / "labelled_pairs.jsonl"
SEED = 20261202
HITS_PER_FAMILY = 14
CHANGES_PER_FAMILY = 14
PLAIN_FIRST = 0.75  # chance a change picks a plain-word slot when the family has one

BRANCHES = ["main", "develop", "master", "staging", "release", "trunk", "hotfix", "experimental"]
REMOTES = ["origin", "upstream", "fork", "backup"]
COLUMNS = ["price", "cost", "quantity", "discount", "tax", "weight", "salary", "age", "score", "balance", "rating"]
TABLES = ["orders", "customers", "invoices", "employees", "products", "payments", "shipments", "accounts"]
AGGREGATES = ["average", "median", "sum", "variance"]
ENVIRONMENTS = ["staging", "production", "sandbox", "qa", "preview", "canary"]
SERVICES = ["checkout", "search", "billing", "notifications", "gateway", "inventory", "auth", "reporting"]
LANGUAGES = ["python", "rust", "go", "java", "kotlin", "ruby", "typescript", "elixir", "scala", "swift"]
FRAMEWORKS = ["django", "flask", "fastapi", "rails", "spring", "express", "laravel", "phoenix"]
VERSIONS = ["3.9", "3.10", "3.11", "3.12", "17", "21", "18", "20"]
UNITS = ["celsius", "fahrenheit", "kelvin"]
DISTANCES = ["miles", "kilometers", "meters", "feet", "inches", "yards"]
CURRENCIES = ["dollars", "euros", "pounds", "yen", "francs", "rupees"]
AMOUNTS = ["12", "40", "75", "120", "250", "999", "1500"]
WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
MONTHS = ["january", "february", "march", "april", "june", "july", "september", "october", "december"]
PEOPLE = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy"]
ROLES = ["admin", "editor", "viewer", "owner", "auditor", "maintainer", "guest"]
REGIONS = ["frankfurt", "virginia", "oregon", "ireland", "tokyo", "singapore", "sydney", "mumbai"]
RESOURCES = ["bucket", "queue", "topic", "table", "volume", "snapshot", "cluster", "function"]
CLOUDS = ["aws", "gcp", "azure"]
FORMATS = ["json", "yaml", "toml", "csv", "xml", "parquet"]
SORT_KEYS = ["date", "name", "size", "priority", "author", "status"]
LEVELS = ["debug", "info", "warning", "error", "critical"]
ANIMALS = ["cats", "dogs", "horses", "rabbits", "parrots", "hamsters"]
COLORS = ["red", "green", "blue", "orange", "purple", "yellow"]
FRUITS = ["apples", "bananas", "oranges", "pears", "mangoes", "cherries"]
NUMBERS = ["3", "5", "10", "25", "50", "100"]
PATHS = ["src/app.py", "lib/utils.ts", "cmd/server/main.go", "api/views.py", "web/index.html", "etc/app.conf"]


@dataclass(frozen=True, slots=True)
class Family:
    domain: str
    phrasings: tuple[str, ...]
    slots: dict[str, list[str]]
    plain: tuple[str, ...]  # the slots whose values are plain words


def family(domain: str, phrasings: list[str], plain: dict[str, list[str]], **literal: list[str]) -> Family:
    return Family(domain, tuple(phrasings), {**plain, **literal}, tuple(plain))


FAMILIES: list[Family] = [
    # -- git --------------------------------------------------------------------------------------------
    family(
        "git",
        [
            "Rebase my feature branch onto {branch}",
            "Rebase the feature branch on top of {branch}",
            "How do I rebase my feature branch onto {branch}?",
        ],
        {"branch": BRANCHES},
    ),
    family(
        "git",
        [
            "Merge {branch} into my current branch",
            "How do I merge {branch} into the branch I'm on?",
            "Merge the {branch} branch into my current branch",
        ],
        {"branch": BRANCHES},
    ),
    family(
        "git",
        [
            "Push my commits to the {branch} branch on {remote}",
            "How do I push my commits to {remote}'s {branch} branch?",
            "Push the commits to branch {branch} of {remote}",
        ],
        {"branch": BRANCHES, "remote": REMOTES},
    ),
    family(
        "git",
        [
            "Show the commits on {branch} that are not on {other}",
            "Which commits does {branch} have that {other} doesn't?",
            "List the commits in {branch} that are missing from {other}",
        ],
        {"branch": BRANCHES, "other": BRANCHES},
    ),
    family(
        "git",
        [
            "Undo the last {n} commits on {branch} but keep the changes",
            "Reset {branch} by {n} commits and keep my changes",
            "How do I undo the last {n} commits of {branch} while keeping the changes?",
        ],
        {"branch": BRANCHES},
        n=NUMBERS,
    ),
    family(
        "git",
        [
            "Delete the remote branch {branch} from {remote}",
            "How do I delete branch {branch} on the {remote} remote?",
            "Remove the {branch} branch from {remote}",
        ],
        {"branch": BRANCHES, "remote": REMOTES},
    ),
    # -- SQL and dataframes -------------------------------------------------------------------------------
    family(
        "sql",
        [
            "Write a SQL query that returns the {agg} {column} per customer from {table}",
            "SQL to get the {agg} {column} for each customer in {table}",
            "Give me a query computing the {agg} {column} per customer from the {table} table",
        ],
        {"agg": AGGREGATES, "column": COLUMNS, "table": TABLES},
    ),
    family(
        "sql",
        [
            "Add an index on the {column} column of {table}",
            "Create an index on {table}.{column} in SQL",
            "How do I add an index on the {column} column in the {table} table?",
        ],
        {"column": COLUMNS, "table": TABLES},
    ),
    family(
        "sql",
        [
            "Find duplicate rows in {table} by {column}",
            "Write a query to find rows of {table} with duplicate {column} values",
            "How can I find duplicates in the {table} table based on {column}?",
        ],
        {"column": COLUMNS, "table": TABLES},
    ),
    family(
        "dataframes",
        [
            "In pandas, group the {table} dataframe by region and take the {agg} of {column}",
            "Pandas: group {table} by region and compute the {agg} {column}",
            "How do I get the {agg} {column} per region from the {table} dataframe in pandas?",
        ],
        {"agg": AGGREGATES, "column": COLUMNS, "table": TABLES},
    ),
    family(
        "dataframes",
        [
            "Drop the rows of the {table} dataframe where {column} is missing",
            "Remove rows with a missing {column} from the {table} dataframe",
            "How do I drop rows where {column} is null in the {table} dataframe?",
        ],
        {"column": COLUMNS, "table": TABLES},
    ),
    family(
        "dataframes",
        [
            "Plot a histogram of {column} from the {table} dataframe with {n} bins",
            "Draw a histogram of the {column} column in {table} using {n} bins",
            "How do I plot {column} from {table} as a histogram with {n} bins?",
        ],
        {"column": COLUMNS, "table": TABLES},
        n=NUMBERS,
    ),
    # -- files and paths ------------------------------------------------------------------------------------
    family(
        "files",
        [
            "Sort the files in this folder by {key}",
            "How do I sort the files in this directory by {key}?",
            "List this folder's files sorted by {key}",
        ],
        {"key": SORT_KEYS},
    ),
    family(
        "files",
        [
            "Convert the config file from {fmt} to {other}",
            "Turn this {fmt} config into {other}",
            "How do I convert the {fmt} configuration to {other}?",
        ],
        {"fmt": FORMATS, "other": FORMATS},
    ),
    family(
        "files",
        [
            "Find every {fmt} file modified in the last {n} days",
            "Which {fmt} files were modified in the last {n} days?",
            "List the {fmt} files changed in the past {n} days",
        ],
        {"fmt": FORMATS},
        n=NUMBERS,
    ),
    family(
        "files",
        [
            "Explain what {path} does",
            "What does {path} do?",
            "Describe the purpose of {path}",
        ],
        {},
        path=PATHS,
    ),
    family(
        "files",
        [
            "Set the log level to {level} in {path}",
            "Change the logging level in {path} to {level}",
            "How do I set {path}'s log level to {level}?",
        ],
        {"level": LEVELS},
        path=PATHS,
    ),
    # -- environments and services ----------------------------------------------------------------------
    family(
        "environments",
        [
            "Deploy the {service} service to {env}",
            "How do I deploy {service} to the {env} environment?",
            "Roll out the {service} service on {env}",
        ],
        {"service": SERVICES, "env": ENVIRONMENTS},
    ),
    family(
        "environments",
        [
            "Restart the {service} pods in {env}",
            "How do I restart the {service} pods on {env}?",
            "Restart every {service} pod in the {env} environment",
        ],
        {"service": SERVICES, "env": ENVIRONMENTS},
    ),
    family(
        "environments",
        [
            "Show the error logs of {service} in {env} from the last hour",
            "Get the last hour of {service} error logs on {env}",
            "What errors did {service} log in {env} during the last hour?",
        ],
        {"service": SERVICES, "env": ENVIRONMENTS},
    ),
    family(
        "environments",
        [
            "Scale the {service} deployment in {env} to {n} replicas",
            "Set the {service} replicas on {env} to {n}",
            "How do I scale {service} to {n} replicas in {env}?",
        ],
        {"service": SERVICES, "env": ENVIRONMENTS},
        n=NUMBERS,
    ),
    family(
        "environments",
        [
            "Copy the {service} database from {env} to {other}",
            "How do I copy the {service} database from {env} into {other}?",
            "Clone the {service} database of {env} into {other}",
        ],
        {"service": SERVICES, "env": ENVIRONMENTS, "other": ENVIRONMENTS},
    ),
    # -- languages and versions -------------------------------------------------------------------------
    family(
        "languages",
        [
            "Rewrite this function in {lang}",
            "Port this function to {lang}",
            "Translate this function into {lang}",
            "How would this function look in {lang}?",
        ],
        {"lang": LANGUAGES},
    ),
    family(
        "languages",
        [
            "Write a {lang} script that renames every file in a folder to lowercase",
            "Give me a {lang} script to rename all files in a directory to lowercase",
            "In {lang}, write a script that renames each file in a folder to lowercase",
        ],
        {"lang": LANGUAGES},
    ),
    family(
        "languages",
        [
            "Upgrade the project from {framework} {version} to the next major version",
            "How do I upgrade {framework} {version} in this project to the next major version?",
            "Migrate this project off {framework} {version} to the next major release",
        ],
        {"framework": FRAMEWORKS},
        version=VERSIONS,
    ),
    family(
        "languages",
        [
            "Set up a {framework} project with {lang} {version}",
            "How do I set up {framework} using {lang} {version}?",
            "Create a new {framework} project on {lang} {version}",
        ],
        {"framework": FRAMEWORKS, "lang": LANGUAGES},
        version=VERSIONS,
    ),
    family(
        "languages",
        [
            "Write unit tests for the {framework} views",
            "Add unit tests covering the {framework} views",
            "Create unit tests for the views of the {framework} app",
        ],
        {"framework": FRAMEWORKS},
    ),
    # -- units and amounts ---------------------------------------------------------------------------
    family(
        "units",
        [
            "Convert {amount} degrees {unit} to {other}",
            "What is {amount} degrees {unit} in {other}?",
            "How many degrees {other} is {amount} degrees {unit}?",
        ],
        {"unit": UNITS, "other": UNITS},
        amount=AMOUNTS,
    ),
    family(
        "units",
        [
            "Convert {amount} {dist} to {other}",
            "How many {other} are {amount} {dist}?",
            "What is {amount} {dist} in {other}?",
        ],
        {"dist": DISTANCES, "other": DISTANCES},
        amount=AMOUNTS,
    ),
    family(
        "units",
        [
            "Convert {amount} {currency} to {other} at today's rate",
            "How much is {amount} {currency} in {other} at today's rate?",
            "What are {amount} {currency} worth in {other} at today's exchange rate?",
        ],
        {"currency": CURRENCIES, "other": CURRENCIES},
        amount=AMOUNTS,
    ),
    family(
        "units",
        [
            "Split a bill of {amount} {currency} between {n} people",
            "How much does each of {n} people pay on a {amount} {currency} bill?",
            "Divide {amount} {currency} evenly among {n} people",
        ],
        {"currency": CURRENCIES},
        amount=AMOUNTS,
        n=NUMBERS,
    ),
    family(
        "units",
        [
            "Write a recipe for {n} people using {fruit}",
            "Give me a recipe with {fruit} that serves {n} people",
            "Suggest a recipe using {fruit} for {n} people",
        ],
        {"fruit": FRUITS},
        n=NUMBERS,
    ),
    # -- people and dates ----------------------------------------------------------------------------
    family(
        "people",
        [
            "Grant {person} the {role} role on the project",
            "Give {person} {role} access to the project",
            "How do I make {person} a project {role}?",
        ],
        {"person": PEOPLE, "role": ROLES},
    ),
    family(
        "people",
        [
            "Schedule a meeting with {person} on {day}",
            "Set up a meeting with {person} for {day}",
            "Book a meeting with {person} on {day}",
        ],
        {"person": PEOPLE, "day": WEEKDAYS},
    ),
    family(
        "people",
        [
            "Write an email to {person} asking to move our meeting to {day}",
            "Draft an email asking {person} to move the meeting to {day}",
            "Email {person} and ask whether we can move the meeting to {day}",
        ],
        {"person": PEOPLE, "day": WEEKDAYS},
    ),
    family(
        "people",
        [
            "Show the commits {person} made in {month}",
            "Which commits did {person} make in {month}?",
            "List {person}'s commits from {month}",
        ],
        {"person": PEOPLE, "month": MONTHS},
    ),
    family(
        "people",
        [
            "Summarise the sales report for {month}",
            "Give me a summary of the {month} sales report",
            "Summarize the sales report of {month}",
        ],
        {"month": MONTHS},
    ),
    family(
        "people",
        [
            "Remove {person} from the {role} group",
            "How do I remove {person} from the {role} group?",
            "Take {person} out of the {role} group",
        ],
        {"person": PEOPLE, "role": ROLES},
    ),
    # -- cloud resources --------------------------------------------------------------------------------
    family(
        "cloud",
        [
            "Create a {resource} in the {region} region on {cloud}",
            "How do I create a {cloud} {resource} in {region}?",
            "Provision a {resource} on {cloud} in the {region} region",
        ],
        {"resource": RESOURCES, "region": REGIONS, "cloud": CLOUDS},
    ),
    family(
        "cloud",
        [
            "Delete the unused {resource} resources in {region}",
            "How do I delete unused {resource} resources in the {region} region?",
            "Remove every unused {resource} in {region}",
        ],
        {"resource": RESOURCES, "region": REGIONS},
    ),
    family(
        "cloud",
        [
            "Estimate the monthly cost of a {resource} in {region}",
            "What does a {resource} in {region} cost per month?",
            "How much will a {resource} in the {region} region cost each month?",
        ],
        {"resource": RESOURCES, "region": REGIONS},
    ),
    family(
        "cloud",
        [
            "Move the {service} {resource} from {region} to {other}",
            "How do I migrate the {service} {resource} from {region} to {other}?",
            "Relocate the {service} {resource} from the {region} region to {other}",
        ],
        {"service": SERVICES, "resource": RESOURCES, "region": REGIONS, "other": REGIONS},
    ),
    family(
        "cloud",
        [
            "Give the {service} service read access to the {resource} in {env}",
            "Grant {service} read access to the {env} {resource}",
            "How do I let the {service} service read the {resource} in {env}?",
        ],
        {"service": SERVICES, "resource": RESOURCES, "env": ENVIRONMENTS},
    ),
    # -- everyday (non-coding) requests ----------------------------------------------------------------
    family(
        "everyday",
        [
            "Write a short poem about {animal}",
            "Compose a short poem about {animal}",
            "Give me a short poem on {animal}",
        ],
        {"animal": ANIMALS},
    ),
    family(
        "everyday",
        [
            "Suggest a {color} color palette for a website",
            "Propose a website color palette based on {color}",
            "What's a good {color} color palette for a website?",
        ],
        {"color": COLORS},
    ),
    family(
        "everyday",
        [
            "How do I care for {animal} in winter?",
            "Give me tips for taking care of {animal} during winter",
            "What should I know about caring for {animal} in the winter?",
        ],
        {"animal": ANIMALS},
    ),
]


@dataclass(frozen=True, slots=True)
class LabelledPair:
    domain: str
    family: int
    kind: str  # "hit" or "change"
    changed_slot: str
    plain_word: bool  # the change is one plain-word substitution
    same_phrasing: bool
    cached: str
    new: str

    @property
    def should_hit(self) -> bool:
        return self.kind == "hit"


def _fill(template: str, values: dict[str, str]) -> str:
    text = template.format(**values)
    return text[0].upper() + text[1:]


def _assign(rng: random.Random, fam: Family) -> dict[str, str]:
    values: dict[str, str] = {}
    for name, choices in fam.slots.items():
        used = set(values.values())
        values[name] = rng.choice([c for c in choices if c not in used] or choices)
    return values


def generate(seed: int = SEED) -> list[LabelledPair]:
    """Every pair of the labelled set, deterministic for ``seed``."""
    rng = random.Random(seed)
    pairs: list[LabelledPair] = []
    seen: set[tuple[str, str]] = set()

    def add(pair: LabelledPair) -> bool:
        if pair.cached == pair.new or (pair.cached, pair.new) in seen:
            return False
        seen.add((pair.cached, pair.new))
        pairs.append(pair)
        return True

    for index, fam in enumerate(FAMILIES):
        made = tries = 0
        while made < HITS_PER_FAMILY and tries < 500:
            tries += 1
            values = _assign(rng, fam)
            first, second = rng.sample(fam.phrasings, 2)
            pair = LabelledPair(fam.domain, index, "hit", "", False, False, _fill(first, values), _fill(second, values))
            made += add(pair)
        made = tries = 0
        while made < CHANGES_PER_FAMILY and tries < 500:
            tries += 1
            values = _assign(rng, fam)
            use_plain = bool(fam.plain) and (rng.random() < PLAIN_FIRST or len(fam.slots) == len(fam.plain))
            slot = rng.choice(fam.plain if use_plain else [s for s in fam.slots if s not in fam.plain])
            changed = dict(values)
            changed[slot] = rng.choice([c for c in fam.slots[slot] if c not in values.values()])
            same = rng.random() < 0.5
            first = rng.choice(fam.phrasings)
            second = first if same else rng.choice([p for p in fam.phrasings if p != first])
            pair = LabelledPair(
                fam.domain,
                index,
                "change",
                slot,
                slot in fam.plain,
                same,
                _fill(first, values),
                _fill(second, changed),
            )
            made += add(pair)
    return pairs


def load() -> list[LabelledPair]:
    """The committed labelled set."""
    with DATA.open(encoding="utf-8") as fh:
        return [LabelledPair(**json.loads(line)) for line in fh if line.strip()]


def write() -> Path:
    """Regenerate the committed data file."""
    DATA.parent.mkdir(parents=True, exist_ok=True)
    with DATA.open("w", encoding="utf-8") as fh:
        for pair in generate():
            fh.write(json.dumps(asdict(pair), ensure_ascii=False) + "\n")
    return DATA


if __name__ == "__main__":
    path = write()
    pairs = load()
    changes = [p for p in pairs if not p.should_hit]
    plain = sum(p.plain_word for p in changes)
    print(
        f"{path}: {len(pairs) - len(changes)} hits, {len(changes)} changes ({plain} plain-word substitutions), "
        f"{len({p.domain for p in pairs})} domains, {len(FAMILIES)} families"
    )

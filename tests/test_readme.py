"""The README documents every setting and every management command.

Other work adds settings and commands all the time: these tests fail with the list of
what is missing, so whoever added it can write its line (README "Configuration" table for
an environment variable, any README line naming ``manage.py <command>`` or the command).
"""

from __future__ import annotations

import re
from pathlib import Path

from django.apps import apps
from django.core.management import get_commands

BASE_DIR = Path(__file__).resolve().parent.parent
README = (BASE_DIR / "README.md").read_text(encoding="utf-8")
SETTINGS = (BASE_DIR / "gateway_platform" / "settings.py").read_text(encoding="utf-8")
# env.str("X"), env.int("X", ...), env_secret("X"), os.environ.get("X"), os.environ["X"], env("X")
ENV_READ = re.compile(r"""(?:\benv(?:\.\w+)?|env_secret|os\.environ\.get|os\.getenv)\(\s*f?["']([A-Z][A-Z0-9_]+)["']""")
ENV_INDEX = re.compile(r"""os\.environ\[\s*["']([A-Z][A-Z0-9_]+)["']\s*\]""")
TABLE_ROW = re.compile(r"^\|.*\|\s*$", re.MULTILINE)  # any Markdown table row
NAME = re.compile(r"`([A-Z][A-Z0-9_]+)`")


def settings_env_vars() -> set[str]:
    return set(ENV_READ.findall(SETTINGS)) | set(ENV_INDEX.findall(SETTINGS))


def test_the_scan_finds_the_settings_env_vars():
    # Guards the regular expressions: if they found nothing, the next test could not fail.
    found = settings_env_vars()
    assert {"DATABASE_URL", "REDIS_URL", "LOG_FORMAT", "GATEWAY_HEALTH_PROBE_SECONDS"} <= found
    assert len(found) > 30


def test_every_environment_variable_the_settings_read_is_in_the_readme_table():
    documented = {name for row in TABLE_ROW.findall(README) for name in NAME.findall(row)}
    missing = sorted(settings_env_vars() - documented)
    assert missing == [], "add a row to the README's Configuration table for: " + ", ".join(missing)


def project_commands() -> list[str]:
    ours = {c.name for c in apps.get_app_configs() if (BASE_DIR / c.name.replace(".", "/")).is_dir()}
    return sorted(name for name, app in get_commands().items() if app in ours)


def test_every_management_command_of_the_project_has_a_readme_line():
    commands = project_commands()
    assert {"create_api_key", "mock_upstream", "import_config"} <= set(commands)
    missing = [c for c in commands if not re.search(rf"(manage\.py {c}\b|`{c}\b)", README)]
    assert missing == [], "document in the README: " + ", ".join(missing)

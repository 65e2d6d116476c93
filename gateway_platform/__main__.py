"""``python -m gateway_platform serve|worker|beat|migrate``: one command per production role.

See ``gateway_platform.roles`` for what each role reads and runs, and the README's
"Production" section for how they fit together.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile

from gateway_platform.roles import BASE_DIR, ROLES, RoleError, check_environment, command_for, migrate_steps

logger = logging.getLogger("gateway_platform.roles")

USAGE = f"usage: python -m gateway_platform {{{','.join(ROLES)}}}  (settings come from environment variables)\n"


def _migrate() -> int:
    import django
    from django.core.management import call_command

    django.setup()
    for name, *args in migrate_steps(os.environ):
        logger.info("migrate: running %s", " ".join([name, *args]))
        call_command(name, *args)
    return 0


def main(argv: list[str]) -> int:
    """Validate the environment for ``argv[1]`` and run it (``exec`` for the long-running roles)."""
    if len(argv) != 2 or argv[1] in ("-h", "--help"):
        sys.stderr.write(USAGE)
        return 0 if len(argv) == 2 else 2
    role = argv[1]
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "gateway_platform.settings")
    try:
        check_environment(role, os.environ)
        if role == "migrate":
            return _migrate()
        if role == "serve":
            # Several worker processes: /metrics must add up all of them, so they share a directory.
            if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="gateway-metrics-")
            os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)
        command = command_for(role, os.environ, sys.executable)
    except RoleError as exc:
        sys.stderr.write(f"gateway_platform {role}: {exc}\n")
        return 2
    os.chdir(BASE_DIR)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(command[0], command)  # signals now go straight to the server / Celery


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

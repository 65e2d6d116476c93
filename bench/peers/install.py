"""Install the peers, pinned, into folders of their own under var/peers/ (ignored by git).

- Portkey's OSS gateway from npm: ``bench/peers/portkey/package.json`` and its
  lock file, installed with ``npm ci`` into ``var/peers/portkey``.
- LiteLLM's proxy from PyPI: ``bench/peers/litellm-requirements.txt`` (every
  package pinned) into the virtualenv ``var/peers/litellm``.

A folder whose copy of the pin file matches the repository's is left alone,
so only the first run (or a changed pin) downloads anything.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

from bench import procs

HERE = Path(__file__).resolve().parent
PEERS_DIR = procs.BASE_DIR / "var" / "peers"
PORTKEY_DIR = PEERS_DIR / "portkey"
LITELLM_DIR = PEERS_DIR / "litellm"
PORTKEY_PINS = HERE / "portkey"
LITELLM_PINS = HERE / "litellm-requirements.txt"
PORTKEY_ENTRY = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "build" / "start-server.js"
LITELLM_BIN = LITELLM_DIR / "bin" / "litellm"
INSTALL_TIMEOUT_S = 1200

# Portkey's own repository patches @hono/node-server 1.13.5 with patch-package
# (patches/@hono+node-server+1.13.5.patch): await the response so a failing one
# is caught. The npm package does not ship the patch, so it is applied here.
NODE_SERVER_JS = PORTKEY_DIR / "node_modules" / "@hono" / "node-server" / "dist" / "index.mjs"
NODE_SERVER_UNPATCHED = "      return responseViaResponseObject(res, outgoing, options);"
NODE_SERVER_PATCHED = "      return await responseViaResponseObject(res, outgoing, options);"


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


class InstallError(RuntimeError):
    """A peer could not be installed here; the message says why."""


def _run(args: list[str], cwd: Path, log: Path) -> None:
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        try:
            done = subprocess.run(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=INSTALL_TIMEOUT_S)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise InstallError(f"{' '.join(args[:3])} failed: {exc} (log: {log})") from exc
    if done.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-6:])
        raise InstallError(f"{' '.join(args[:3])} exited with {done.returncode} (log: {log}):\n{tail}")


def _up_to_date(pins: list[Path], folder: Path, entry: Path) -> bool:
    return entry.exists() and all((folder / p.name).exists() and filecmp.cmp(p, folder / p.name, False) for p in pins)


def portkey() -> Path:
    """Portkey's start script, installed if needed."""
    pins = [PORTKEY_PINS / "package.json", PORTKEY_PINS / "package-lock.json"]
    if not _up_to_date(pins, PORTKEY_DIR, PORTKEY_ENTRY):
        if shutil.which("npm") is None or shutil.which("node") is None:
            raise InstallError("node/npm are not installed (Debian: apt-get install nodejs npm)")
        _say(f"installing Portkey (npm ci) into {PORTKEY_DIR}")
        shutil.rmtree(PORTKEY_DIR, ignore_errors=True)
        PORTKEY_DIR.mkdir(parents=True)
        for pin in pins:
            shutil.copyfile(pin, PORTKEY_DIR / pin.name)
        _run(
            ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], PORTKEY_DIR, PEERS_DIR / "portkey-install.log"
        )
    source = NODE_SERVER_JS.read_text()
    if NODE_SERVER_UNPATCHED in source:
        NODE_SERVER_JS.write_text(source.replace(NODE_SERVER_UNPATCHED, NODE_SERVER_PATCHED, 1))
    return PORTKEY_ENTRY


def litellm() -> Path:
    """LiteLLM's ``litellm`` command, installed if needed."""
    if not _up_to_date([LITELLM_PINS], LITELLM_DIR, LITELLM_BIN):
        _say(f"installing LiteLLM (pip) into {LITELLM_DIR}; a few minutes")
        shutil.rmtree(LITELLM_DIR, ignore_errors=True)
        log = PEERS_DIR / "litellm-install.log"
        _run([sys.executable, "-m", "venv", str(LITELLM_DIR)], procs.BASE_DIR, log)
        pip = [str(LITELLM_DIR / "bin" / "python"), "-m", "pip", "install", "-q"]
        _run([*pip, "-r", str(LITELLM_PINS)], procs.BASE_DIR, log)
        shutil.copyfile(LITELLM_PINS, LITELLM_DIR / LITELLM_PINS.name)
    return LITELLM_BIN


def versions() -> dict[str, str]:
    """Installed versions of the peers and the runtimes (for the results)."""
    found: dict[str, str] = {}
    package = PORTKEY_DIR / "node_modules" / "@portkey-ai" / "gateway" / "package.json"
    if package.exists():
        import json

        found["portkey"] = json.loads(package.read_text())["version"]
    if shutil.which("node"):
        found["node"] = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    for line in LITELLM_PINS.read_text().splitlines():
        if line.startswith("litellm=="):
            found["litellm"] = line.split("==", 1)[1]
    if shutil.which("wrk"):
        head = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        found["wrk"] = (head.stdout or head.stderr).split("[")[0].replace("wrk", "").strip()
    return found

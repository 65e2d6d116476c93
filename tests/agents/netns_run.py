"""Run a command with no network but loopback, its 127.0.0.1:PORT forwarded to a Unix socket.

    unshare -n python tests/agents/netns_run.py PORT SOCKET -- COMMAND [ARGS...]

Run inside a fresh network namespace (``unshare -n``): it brings the loopback
interface up, forwards TCP connections on ``127.0.0.1:PORT`` to the gateway's
Unix socket (which lives on the filesystem, so it crosses namespaces), runs
COMMAND and exits with its status. Agent CLIs under test therefore reach the
gateway and nothing else: no telemetry, update check or model download can
leave the machine, whatever their settings.
"""

from __future__ import annotations

import asyncio
import fcntl
import socket
import struct
import sys
import threading

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def loopback_up() -> None:
    """``ip link set lo up`` without needing the ``ip`` binary."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(65536):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


async def _forward(port: int, path: str, ready: threading.Event) -> None:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            upstream_reader, upstream_writer = await asyncio.open_unix_connection(path)
        except OSError:
            client_writer.close()
            return
        await asyncio.gather(_pipe(client_reader, upstream_writer), _pipe(upstream_reader, client_writer))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    ready.set()
    async with server:
        await server.serve_forever()


def main() -> int:
    port, path, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        raise SystemExit("usage: netns_run.py PORT SOCKET -- COMMAND [ARGS...]")
    loopback_up()
    ready = threading.Event()
    thread = threading.Thread(target=lambda: asyncio.run(_forward(int(port), path, ready)), daemon=True)
    thread.start()
    if not ready.wait(10):
        raise SystemExit("the loopback forwarder did not start")
    import subprocess

    return subprocess.call(command)


if __name__ == "__main__":
    sys.exit(main())

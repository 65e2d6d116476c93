"""The request path's Redis transport: one multiplexed, auto-pipelined connection per event loop.

Against real Redis servers: the test Redis, and a private embedded one that is killed and frozen.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

import pytest
import redis

from gateway_platform import embedded
from gateway_platform.redis_clients import Batch, sync_client
from gateway_platform.redis_link import Endpoint, Multiplexer, pack
from tests.serving.redis_proxy import RedisRoundTrips

COUNTER = "return redis.call('INCRBY', KEYS[1], ARGV[1])"


@pytest.fixture
def private_redis(tmp_path):
    """A Redis of its own (the product's embedded one under ``tmp_path``), to kill or freeze: ``(url, pid)``."""
    url = embedded.redis_url(tmp_path)
    try:
        yield url, tmp_path
    finally:
        pid_file = tmp_path / "redis" / "redis.pid"
        if pid_file.exists():  # thaw a frozen one so that it can stop
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGCONT)
        embedded.stop(tmp_path)


def _pid(var_dir) -> int:
    return int((var_dir / "redis" / "redis.pid").read_text().strip())


def test_a_batch_gets_redis_replies_in_order_with_a_command_error_in_its_place():
    sync_client().delete("link:text", "link:n")

    async def run() -> list[object]:
        batch = Batch()
        batch.command("SET", "link:text", "hello")
        batch.command("INCR", "link:text")  # not a number: an error reply, in its place
        batch.script(COUNTER, ["link:n"], [5])
        batch.command("MGET", "link:text", "link:n", "link:absent")
        return await batch.execute()

    set_reply, incr, script, values = asyncio.run(run())
    assert set_reply == b"OK"  # Redis' own reply: no redis-py callbacks
    assert isinstance(incr, redis.ResponseError) and "not an integer" in str(incr)
    assert script == 5
    assert values == [b"hello", b"5", None]


def test_scripts_are_loaded_again_when_redis_has_forgotten_them():
    sync_client().delete("link:n")
    sync_client().script_flush()

    async def run() -> list[object]:
        batch = Batch()
        batch.script(COUNTER, ["link:n"], [2])
        return await batch.execute()

    assert asyncio.run(run()) == [2]  # NOSCRIPT, SCRIPT LOAD, resent once
    assert asyncio.run(run()) == [4]


def test_the_batches_of_one_loop_turn_leave_in_one_round_trip_and_each_gets_its_own_replies(settings):
    keys = [f"link:many:{n}" for n in range(40)]
    sync_client().delete(*keys)
    with RedisRoundTrips(settings.REDIS_URL) as proxy:
        settings.REDIS_URL = proxy.url

        async def one(key: str, by: int) -> list[object]:
            batch = Batch()
            batch.command("INCRBY", key, by)
            batch.command("GET", key)
            return await batch.execute()

        async def run() -> list[list[object]]:
            await one("link:warm", 1)  # connects (and selects the database) first
            proxy.clear()
            return await asyncio.gather(*(one(key, n) for n, key in enumerate(keys)))

        results = asyncio.run(run())
        trips = proxy.wait_for(lambda trips: len(trips) >= 1)
    assert results == [[n, str(n).encode()] for n in range(len(keys))]
    assert len(trips) == 1
    assert sum(1 for command in trips[0].commands if command[0].upper() == "INCRBY") == len(keys)


def test_a_killed_redis_fails_the_waiting_batch_and_the_next_batch_connects_again(private_redis):
    url, var_dir = private_redis
    link = Multiplexer(Endpoint.from_url(url))

    async def before_and_during_the_kill() -> BaseException | None:
        assert await link.execute([("SET", "k", "1")]) == [b"OK"]
        waiting = asyncio.ensure_future(link.execute([("BLPOP", "never", 0)]))
        await asyncio.sleep(0.2)
        os.kill(_pid(var_dir), signal.SIGKILL)
        try:
            await asyncio.wait_for(waiting, 10)
        except redis.ConnectionError as exc:
            return exc
        return None

    async def after_the_restart() -> list[object]:
        return await link.execute([("PING",)])

    loop = asyncio.new_event_loop()
    try:
        assert isinstance(loop.run_until_complete(before_and_during_the_kill()), redis.ConnectionError)
        deadline = time.monotonic() + 10
        while embedded._redis_alive(var_dir / "redis" / embedded.REDIS_SOCKET):
            assert time.monotonic() < deadline, "the killed Redis still answers"
            time.sleep(0.05)
        with pytest.raises(redis.ConnectionError):
            loop.run_until_complete(after_the_restart())  # down: refused at once, not hung
        assert embedded.redis_url(var_dir) == url
        assert loop.run_until_complete(after_the_restart()) == [b"PONG"]
    finally:
        loop.close()


def test_a_silent_redis_times_the_batch_out_and_a_late_reply_never_reaches_the_next_batch(private_redis):
    url, var_dir = private_redis
    link = Multiplexer(Endpoint.from_url(url), timeout=0.5)

    async def run() -> tuple[BaseException | None, list[object]]:
        await link.execute([("SET", "k", "before")])
        os.kill(_pid(var_dir), signal.SIGSTOP)
        failure: BaseException | None = None
        try:
            await asyncio.wait_for(link.execute([("GET", "k")]), 10)
        except redis.TimeoutError as exc:
            failure = exc
        os.kill(_pid(var_dir), signal.SIGCONT)  # Redis now answers the GET above, on the closed connection
        return failure, await link.execute([("SET", "k", "after"), ("GET", "k")])

    failure, replies = asyncio.run(run())
    assert isinstance(failure, redis.TimeoutError)
    assert replies == [b"OK", b"after"]


def test_a_url_with_options_the_link_does_not_implement_goes_through_redis_py(settings):
    settings.REDIS_URL = settings.REDIS_URL + ("&" if "?" in settings.REDIS_URL else "?") + "health_check_interval=30"
    with pytest.raises(ValueError, match="health_check_interval"):
        Endpoint.from_url(settings.REDIS_URL)

    async def run() -> list[object]:
        batch = Batch()
        batch.command("SET", "link:fallback", "x")
        batch.command("GET", "link:fallback")
        return await batch.execute()

    assert asyncio.run(run()) == [True, b"x"]  # redis-py's pipeline: its SET callback answers True


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://localhost", Endpoint()),
        ("redis://:pw@cache:6380/2", Endpoint(host="cache", port=6380, password="pw", db=2)),
        ("redis://app:pw@cache/0", Endpoint(host="cache", username="app", password="pw")),
        ("unix:///run/redis.sock?db=3", Endpoint(path="/run/redis.sock", db=3)),
        ("rediss://cache:6390", Endpoint(host="cache", port=6390, tls=True)),
    ],
)
def test_endpoints_are_read_from_redis_urls(url, expected):
    assert Endpoint.from_url(url) == expected


def test_a_new_connection_authenticates_and_selects_its_database_first():
    assert Endpoint(password="pw", db=2).handshake() == [("AUTH", "pw"), ("SELECT", 2)]
    assert Endpoint(username="app", password="pw").handshake() == [("AUTH", "app", "pw")]
    assert Endpoint().handshake() == []


@pytest.mark.parametrize("bad", [None, True, 1.5j, object()])
def test_an_argument_redis_cannot_take_is_a_data_error_as_in_redis_py(bad):
    with pytest.raises(redis.DataError):
        pack([("SET", "k", bad)])


def test_commands_are_packed_as_resp_arrays_of_bulk_strings():
    assert (
        pack([("SET", "k", 1), ("GET", b"k")])
        == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\n1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
    )

"""Scripts sent in a stream (`scripts.run_streamed`): every reply in order, a forgotten script loaded
and its calls sent again, and the connection left clean for the next command."""

from __future__ import annotations

import pytest
import redis
from redis.exceptions import NoPermissionError, ResponseError
from rq.job import JobStatus

from rediscron import scripts


def _ticks(n: int) -> list[tuple[list[str], list[object]]]:
    # tick.lua reads; each call asks for a different number of entries, so replies can be told apart.
    return [
        (["rq:cron_jobs:schedule", "rq:cron_jobs:last_update"], [repr(1000.0 + i), 0, "rq:cron_job:", 0, "0", "0"])
        for i in range(n)
    ]


def test_replies_come_back_in_order_across_groups(connection: redis.Redis) -> None:
    replies = scripts.run_streamed("tick", connection, _ticks(23), per_send=5)
    assert [float(reply[0]) for reply in replies] == [1000.0 + i for i in range(23)]
    assert connection.ping()


def test_a_forgotten_script_is_loaded_and_its_calls_sent_again(connection: redis.Redis) -> None:
    scripts.run_streamed("tick", connection, _ticks(1))
    connection.script_flush()  # what a restart does
    replies = scripts.run_streamed("tick", connection, _ticks(7), per_send=3)
    assert [float(reply[0]) for reply in replies] == [1000.0 + i for i in range(7)]


def test_an_error_reply_is_raised_and_the_connection_stays_usable(connection: redis.Redis) -> None:
    calls = _ticks(3)
    calls[1] = (calls[1][0], ["not a number", 0, "rq:cron_job:", 0, "0", "0"])
    connection.set("rq:cron_jobs:schedule", "not a sorted set")
    with pytest.raises(ResponseError):
        scripts.run_streamed("tick", connection, calls, per_send=1)
    connection.delete("rq:cron_jobs:schedule")
    # Every reply of the failed stream was read: the next command gets its own.
    assert connection.get("rq:cron_jobs:last_update") is None
    assert len(scripts.run_streamed("tick", connection, _ticks(2))) == 2


def _python_packed(commands: list[tuple[object, ...]]) -> bytes:
    """redis-py's own packing, in Python (no hiredis): the reference."""
    link = redis.connection.Connection()
    link._command_packer = redis.connection.PythonRespSerializer(link._buffer_cutoff, link.encoder.encode)
    return b"".join(link.pack_commands(commands))


def test_fire_arguments_are_packed_as_redis_py_packs_them(connection: redis.Redis) -> None:
    commands = [
        ("EVALSHA", "0" * 40, 2, "k1", "k2", "text", "é ü 漢", b"\x00\xff bytes", 7, -3, 1.5, 0.1 + 0.2),
        ("EVALSHA", "2" * 40, 0, JobStatus.QUEUED),
        ("EVALSHA", "1" * 40, 0, ""),
    ]
    link = connection.connection_pool.make_connection()
    packed = b"".join(scripts._packed(link, commands))
    assert packed == _python_packed(commands)
    if scripts._hiredis_pack is not None:  # the fast path was the one taken
        assert packed == b"".join(scripts._hiredis_pack(command) for command in commands)


def test_a_connection_with_another_encoding_is_packed_by_redis_py(redis_url: str) -> None:
    other = redis.Redis.from_url(redis_url, encoding="latin-1")
    link = other.connection_pool.make_connection()
    commands = [("EVALSHA", "0" * 40, 0, "é")]
    # latin-1 from redis-py 8.2 (older ones hand str to hiredis as it is: UTF-8), as redis-py packs it
    assert b"".join(scripts._packed(link, commands)) == b"".join(link.pack_commands(commands))


def test_without_hiredis_redis_py_packs(connection: redis.Redis, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(scripts, "_hiredis_pack", None)
    link = connection.connection_pool.make_connection()
    commands = [("EVALSHA", "0" * 40, 1, "k", b"\x00", 3)]
    assert b"".join(scripts._packed(link, commands)) == _python_packed(commands)
    replies = scripts.run_streamed("tick", connection, _ticks(3))
    assert [float(reply[0]) for reply in replies] == [1000.0, 1001.0, 1002.0]


@pytest.mark.parametrize("transaction", [True, False])
def test_an_error_inside_a_round_trip_is_raised_and_the_others_ran(connection: redis.Redis, transaction: bool) -> None:
    calls = _ticks(3)
    calls[1] = (calls[1][0], ["1000.0", "not a number", "rq:cron_job:", 0, "0", "0"])
    connection.set("rq:cron_jobs:last_update", "7")
    with pytest.raises(ResponseError):
        scripts.run_all("tick", connection, calls, transaction=transaction)
    # A script's error does not undo the others (nor would EXEC): the connection reads its own replies next.
    assert [reply[1] for reply in scripts.run_all("tick", connection, _ticks(2), transaction=transaction)] == [b"7"] * 2


def test_a_command_refused_as_it_is_queued_is_raised_not_execabort(connection: redis.Redis, redis_url: str) -> None:
    connection.execute_command("ACL", "SETUSER", "noscripts", "on", ">pw", "~*", "+@all", "-evalsha")
    try:
        limited = redis.Redis.from_url(redis_url, username="noscripts", password="pw")
        with pytest.raises(NoPermissionError, match="evalsha"):
            scripts.run_all("tick", limited, _ticks(2), transaction=True)
        assert limited.ping()
    finally:
        connection.execute_command("ACL", "DELUSER", "noscripts")


def test_replies_are_decoded_as_the_client_asks(redis_url: str) -> None:
    text = redis.Redis.from_url(redis_url, decode_responses=True)
    text.set("rq:cron_jobs:last_update", "9")
    replies = scripts.run_all("tick", text, _ticks(2), transaction=True)
    assert [reply[1] for reply in replies] == ["9", "9"]


def test_one_script_is_run_again_once_the_server_forgot_it(connection: redis.Redis) -> None:
    keys, args = _ticks(1)[0]
    assert float(scripts.run("tick", connection, keys, list(args))[0]) == 1000.0
    connection.script_flush()  # what a restart does
    assert float(scripts.run("tick", connection, keys, list(args))[0]) == 1000.0
    with connection.pipeline() as pipe:  # queued on a pipeline, as writes that go together are
        assert scripts.run("tick", pipe, keys, list(args)) is pipe
        assert float(pipe.execute()[0][0]) == 1000.0


class DropsOnce(redis.Connection):
    """Loses its connection once, as it sends its ``drop_at``-th packet (a server restart, a proxy's cut)."""

    sends = 0
    drop_at = 0

    def send_packed_command(self, command: object, check_health: bool = True) -> None:
        DropsOnce.sends += 1
        if DropsOnce.sends == DropsOnce.drop_at:
            self.disconnect()
            raise redis.ConnectionError("connection lost (test)")
        super().send_packed_command(command, check_health)  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("drop_at", [1, 3, 6])
def test_a_stream_that_loses_its_connection_sends_again_what_was_not_answered(redis_url: str, drop_at: int) -> None:
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    pool = redis.ConnectionPool.from_url(redis_url, connection_class=DropsOnce, retry=Retry(NoBackoff(), 1))
    client = redis.Redis(connection_pool=pool)
    scripts.load(client, "tick")
    DropsOnce.sends, DropsOnce.drop_at = 0, drop_at
    replies = scripts.run_streamed("tick", client, _ticks(11), per_send=2, retry=True, window=2)
    assert [float(reply[0]) for reply in replies] == [1000.0 + i for i in range(11)]
    assert DropsOnce.sends > 6  # the stream went on after the drop
    assert client.ping()


def test_without_retry_a_lost_connection_is_raised(redis_url: str) -> None:
    pool = redis.ConnectionPool.from_url(redis_url, connection_class=DropsOnce)
    client = redis.Redis(connection_pool=pool)
    scripts.load(client, "tick")
    DropsOnce.sends, DropsOnce.drop_at = 0, 2
    with pytest.raises(redis.ConnectionError):
        scripts.run_streamed("tick", client, _ticks(5), per_send=2)
    assert client.ping()


def test_then_goes_out_with_the_last_group_of_calls_known_in_advance(redis_url: str) -> None:
    client = redis.Redis(connection_pool=redis.ConnectionPool.from_url(redis_url, connection_class=DropsOnce))
    scripts.load(client, "tick")
    DropsOnce.sends, DropsOnce.drop_at = 0, 0
    *ticks, pong = scripts.run_streamed("tick", client, _ticks(3), per_send=2, then=("PING",))
    assert (len(ticks), pong, DropsOnce.sends) == (3, b"PONG", 2)
    *ticks, pong = scripts.run_streamed("tick", client, iter(_ticks(3)), per_send=2, then=("PING",))
    assert (len(ticks), pong, DropsOnce.sends) == (3, b"PONG", 5)  # not known in advance: a send of its own
    with pytest.raises(ValueError, match="then"):
        scripts.run_streamed("tick", client, _ticks(1), then=("PING",), transaction=True)

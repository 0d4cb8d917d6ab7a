"""The Lua scripts (in ``lua/``), loaded once per process and run by SHA.

redis-py re-sends a script whose SHA the server has forgotten (after a restart),
so callers never see ``NOSCRIPT``.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis import Redis
from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoPermissionError, NoScriptError, ResponseError

_hiredis_pack: Callable[[tuple[Any, ...]], bytes] | None
try:
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # the optional hiredis extra
    _hiredis_pack = None

Client = Redis | Pipeline


def _file(name: str) -> str:
    return (resources.files(__package__) / "lua" / f"{name}.lua").read_text(encoding="utf-8")


#: What every script starts with (lua/_common.lua: helpers such as incr_counter()).
_PRELUDE_LINES = _file("_common").count("\n")


@cache
def _source(name: str) -> str:
    """Script ``name`` as loaded: the shared prelude, then the file."""
    return _file("_common") + _file(name)


_registered: dict[str, Script] = {}


def run(name: str, client: Client, keys: list[str], args: list[Any]) -> Any:
    """Run script ``lua/{name}.lua`` on ``client`` (a connection, or a pipeline to queue it)."""
    if isinstance(client, Pipeline):
        try:
            return script(name, client)(keys=keys, args=args, client=client)
        except ResponseError as exc:
            raise explain(exc) from None
    return run_all(name, client, [(keys, args)], transaction=False)[0]


def run_all(
    name: str,
    connection: Redis,
    calls: list[tuple[list[str], list[Any]]],
    *,
    transaction: bool,
    then: tuple[Any, ...] | None = None,
) -> list[Any]:
    """Run the script once per (keys, args) of ``calls``, all in one round trip; the replies in order.

    Plain EVALSHA: a pipeline running registered script objects first asks SCRIPT EXISTS,
    a round trip more. If the server forgot the script (a restart), every call fails alike
    and nothing ran: it is loaded and the calls are sent again. ``then``: a command sent after
    the calls on the same connection (not in a transaction; see `run_then`), its reply last.
    """
    return run_streamed(name, connection, calls, max(len(calls), 1), then, transaction=transaction, retry=True)


def run_then(name: str, connection: Redis, keys: list[str], args: list[Any], then: tuple[Any, ...]) -> tuple[Any, Any]:
    """Run a script, then the command ``then`` on the same connection (one round trip): their replies.

    For ``WAIT``: Valkey counts the replicas that have the writes of the connection it is sent on.
    """
    script_reply, then_reply = run_all(name, connection, [(keys, args)], transaction=False, then=then)
    return script_reply, then_reply


def _raised(replies: list[Any]) -> list[Any]:
    """``replies``, once none is an error: the first one is raised (an ACL refusal named, see `explain`)."""
    for reply in replies:
        if isinstance(reply, ResponseError):
            raise explain(reply)
        if isinstance(reply, Exception):
            raise reply
    return replies


def run_streamed(
    name: str,
    connection: Redis,
    calls: Iterable[tuple[list[str], Sequence[Any]]],
    per_send: int = 5,
    then: tuple[Any, ...] | None = None,
    *,
    transaction: bool = False,
    retry: bool = False,
    window: int | None = None,
) -> list[Any]:
    """Run the script once per call, sent ``per_send`` at a time as each group is packed: the server runs
    the first scripts while the rest are still being made and packed (the first runs of a crowded slot
    are queued in milliseconds). The replies in order, read after the last group is sent.

    ``then``: a command sent after the last call on the same connection (``WAIT``, see `run_then`); its
    reply comes last. ``transaction``: each group in MULTI/EXEC. ``retry``: a lost connection is
    retried as redis-py retries it, sending again what was not answered (only for scripts that can
    run twice). ``window``: at most this many groups unanswered at a time (their replies are read
    as the stream goes), to bound what is held for a resend.
    """
    if then is not None and transaction:
        raise ValueError("a command sent after the calls (then) is not part of their transactions")
    found = script(name, connection)
    sent: list[tuple[list[str], Sequence[Any]]] = []

    def evalsha(keys: list[str], args: Sequence[Any]) -> tuple[Any, ...]:
        return ("EVALSHA", found.sha, len(keys), *keys, *args)

    # Where the calls are known in advance, ``then`` goes out with the last group (one send).
    last = len(calls) - 1 if isinstance(calls, Sequence) else None

    def groups() -> Iterator[list[tuple[Any, ...]]]:
        # Each call is made (and packed) only when its group is sent: the first go out at once.
        for group in batched(calls, per_send):
            sent.extend(group)
            commands = [evalsha(keys, args) for keys, args in group]
            yield [*commands, then] if then is not None and len(sent) - 1 == last else commands
        if then is not None and (last is None or last < 0):
            yield [then]

    replies = _exchange(connection, groups(), transaction=transaction, retry=retry, window=window)
    forgotten = [i for i, reply in enumerate(replies[: len(sent)]) if isinstance(reply, NoScriptError)]
    if forgotten:
        # The server forgot the script (a restart): those calls did not run; load it and send them again
        # (and ``then`` after them, so that it follows every call that ran).
        connection.script_load(found.script)
        again = [evalsha(*sent[i]) for i in forgotten]
        resent = _exchange(connection, [again, *([[then]] if then else [])], transaction=transaction, retry=retry)
        if then is not None:
            replies[-1] = resent[-1]
        for i, reply in zip(forgotten, resent, strict=False):
            replies[i] = reply
    return _raised(replies)


def _checked_out(pool: Any) -> Any:
    try:
        return pool.get_connection()
    except TypeError:  # redis-py before 5.3 wants a command name
        return pool.get_connection("EVALSHA")


def _exchange(
    connection: Redis,
    groups: Iterable[list[tuple[Any, ...]]],
    *,
    transaction: bool,
    retry: bool = True,
    window: int | None = None,
) -> list[Any]:
    """Send each group of ``groups`` as it comes (in MULTI/EXEC if ``transaction``) and read the replies, an
    error reply as a value, as a redis-py pipeline does (``retry``: retried as it retries a lost
    connection), but packed by `_packed`. The replies of all groups, in order.

    ``window``: once more groups than this are unanswered, the oldest one's replies are read.
    """
    pool = connection.connection_pool
    link = _checked_out(pool)
    pending = iter(groups)
    unanswered: deque[tuple[list[bytes], int]] = deque()  # what was sent, and how many replies it gets
    replies: list[Any] = []

    def read_oldest() -> None:
        count = unanswered[0][1]
        got: list[Any] = []
        for _reply in range(count):
            try:
                got.append(link.read_response())
            except ResponseError as exc:
                got.append(exc)
        unanswered.popleft()
        replies.extend(_executed(got) if transaction else got)

    def exchange() -> None:
        for data, _count in unanswered:  # after a lost connection: sent again, as it was not answered
            link.send_packed_command(data)
        for group in pending:
            sent = [("MULTI",), *group, ("EXEC",)] if transaction else group
            unanswered.append((_packed(link, sent), len(sent)))
            link.send_packed_command(unanswered[-1][0])
            if window is not None and len(unanswered) > window:
                read_oldest()
        while unanswered:
            read_oldest()

    def dropped(_error: Exception) -> None:
        link.disconnect()

    try:
        if retry:
            link.retry.call_with_retry(exchange, dropped)
        else:
            exchange()
    except BaseException:
        # Replies left unread would be taken for those of the next command on this connection.
        link.disconnect()
        raise
    finally:
        pool.release(link)
    return replies


def _executed(replies: list[Any]) -> list[Any]:
    """The replies of the commands of one MULTI/EXEC, from the replies to MULTI, each QUEUED and EXEC."""
    outcome = replies[-1]
    if isinstance(outcome, Exception):  # EXECABORT: a command was refused as it was queued
        raise next((reply for reply in replies[1:-1] if isinstance(reply, Exception)), outcome)
    return list(outcome)


def _packed(link: Any, commands: list[tuple[Any, ...]]) -> list[bytes]:
    """``commands`` in Redis's protocol, as the connection packs them but in C where it can.

    A fire script takes some 60 arguments a run, and redis-py (from 8.2) encodes each one in Python
    before hiredis packs it: about 100 µs a run, more than the rest of a fire. hiredis packs text
    (UTF-8), bytes and numbers itself, as redis-py's default encoder does; a connection with another
    encoding, or an argument of another type, is packed by redis-py.
    """
    encoder = getattr(link, "encoder", None)
    if _hiredis_pack is None or encoder is None or (encoder.encoding, encoder.encoding_errors) != ("utf-8", "strict"):
        return list(link.pack_commands(commands))
    try:
        return [b"".join([_hiredis_pack(command) for command in commands])]
    except TypeError:
        return list(link.pack_commands(commands))


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    """``items`` in lists of ``size`` (the last may be shorter), taken as they come."""
    group: list[Any] = []
    for item in items:
        group.append(item)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group


#: An ACL refusal inside a script: Redis 6 says "... f_<sha> ... @user_script:<line> ... can't run this
#: command"; Redis 7 says "... can't run this command ... script: <sha>, on @user_script:<line>"; Valkey
#: says "ACL failure in script: User ... has no permissions to run the 'rpush' command".
_REFUSED = re.compile(r"can't run this command|NOPERM|no permissions", re.IGNORECASE)
_SHA = re.compile(r"(?:f_|script: )([0-9a-f]{40})")
_LINE = re.compile(r"@user_script:(\d+)")
_CALL = re.compile(r"redis\.p?call\('([A-Z]+)'")


def refused_by_acl(text: str) -> bool:
    """Whether a server's error text is an ACL refusal (each server words it its own way)."""
    return _REFUSED.search(text) is not None


def explain(exc: ResponseError) -> ResponseError:
    """An ACL refusal inside a script names no command: name it from the script's line.

    Other errors come back unchanged.
    """
    text = str(exc)
    sha, line_found = _SHA.search(text), _LINE.search(text)
    if not (_REFUSED.search(text) and sha and line_found):
        return exc
    sha_text, line = sha.group(1), int(line_found.group(1))
    for name, registered in _registered.items():
        if registered.sha == sha_text:
            lines = _file(name).splitlines()
            line -= _PRELUDE_LINES
            text = lines[line - 1] if 0 < line <= len(lines) else ""
            call = _CALL.search(text)
            what = (
                f"the {call.group(1)} command"
                if call
                else "one of the commands rq's enqueue sends (HSET, RPUSH, LPUSH, SADD, ZADD, EXPIRE, PERSIST...)"
            )
            return NoPermissionError(
                f"this user has no permissions to run {what} (in rediscron's {name} script, line {line}): {exc}"
            )
    return exc


def load(connection: Redis, *names: str) -> None:
    """Make sure the server knows these scripts now, so a later run does not pay for a resend."""
    with connection.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.script_load(script(name, connection).script)
        pipe.execute()


def script(name: str, client: Client) -> Script:
    """The registered script object (also for callers that queue EVALSHA themselves)."""
    found = _registered.get(name)
    if found is None:
        registrar = client if isinstance(client, Redis) else _pipeline_owner(client)
        found = _registered[name] = registrar.register_script(_source(name))
    return found


def _pipeline_owner(pipeline: Pipeline) -> Redis:
    # A pipeline can't register a script, but one built from a pool makes an equivalent client.
    return Redis(connection_pool=pipeline.connection_pool)

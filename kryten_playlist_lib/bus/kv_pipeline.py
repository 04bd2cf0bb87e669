"""Many JetStream requests in flight at once on one reply subscription, and reading their answers.

Used by `KvStore.update_many`: all reads of a round go out before the first
answer is awaited, then all writes (compare-and-set through the
`Nats-Expected-Last-Subject-Sequence` header).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
from typing import Any

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from kryten_playlist_lib.bus.bridge import DEFAULT_TIMEOUT_SECONDS
from kryten_playlist_lib.errors import NatsUnavailable

WRONG_LAST_SEQUENCE = 10071
LOST_RACE_CODES = (WRONG_LAST_SEQUENCE, 10164)  # nats-py treats both as a lost compare-and-set
NO_MESSAGE = 10037
EXPECTED_LAST_SUBJECT_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"

Request = tuple[str, bytes, "dict[str, str] | None"]  # (subject, payload, headers)


class Pipeline:
    """Many requests in flight on one reply subscription: one wait per round, not one per request.

    nats-py's `request` costs a future, a timer and a lifted reply object each;
    for hundreds of independent reads or writes that bookkeeping, not NATS, is
    most of the time.
    """

    def __init__(self, nc: NatsClient) -> None:
        self._nc = nc
        self._inbox = nc.new_inbox()
        self._round = 0
        self._replies: list[Msg | None] = []
        self._missing = 0
        self._all_in: asyncio.Future[None] | None = None
        self._subscription: Subscription | None = None

    async def __aenter__(self) -> Pipeline:
        self._subscription = await self._nc.subscribe(f"{self._inbox}.>", cb=self._on_reply)
        return self

    async def __aexit__(self, *_exc: object) -> None:
        if self._subscription is not None:
            with contextlib.suppress(nats.errors.Error):
                await self._subscription.unsubscribe()

    async def ask_all(self, requests: list[Request]) -> list[Msg]:
        """Send every request, then wait (5 s at most) for every reply; replies in request order."""
        if not requests:
            return []
        self._round += 1
        self._replies = [None] * len(requests)
        self._missing = len(requests)
        self._all_in = asyncio.get_running_loop().create_future()
        for index, (subject, payload, headers) in enumerate(requests):
            await self._nc.publish(subject, payload, reply=f"{self._inbox}.{self._round}.{index}", headers=headers)
        try:
            await asyncio.wait_for(self._all_in, DEFAULT_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            raise NatsUnavailable("NATS did not answer in time.") from None
        return [reply for reply in self._replies if reply is not None]

    async def _on_reply(self, msg: Msg) -> None:
        round_text, _dot, index_text = msg.subject[len(self._inbox) + 1:].partition(".")
        index = int(index_text)
        if int(round_text) != self._round or self._replies[index] is not None:
            return  # a late reply of an earlier round
        self._replies[index] = msg
        self._missing -= 1
        if self._missing == 0 and self._all_in is not None and not self._all_in.done():
            self._all_in.set_result(None)


def api_answer(reply: Msg) -> dict[str, Any]:
    """A JetStream API answer. A reply that is not one (a no-responders status) means JetStream is not there."""
    try:
        answer = json.loads(reply.data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise NatsUnavailable("JetStream did not answer.")
    return answer


def stored_message(reply: Msg) -> tuple[bytes | None, int]:
    """A message-get answer: the stored bytes and revision; None for a key never written (revision 0) or deleted."""
    answer = api_answer(reply)
    error = answer.get("error")
    if isinstance(error, dict):
        if error.get("err_code") == NO_MESSAGE:
            return None, 0
        raise NatsUnavailable(f"JetStream refused a read: {error.get('description')}")
    message = answer["message"]
    if is_removal(message.get("hdrs")):
        return None, int(message["seq"])  # a delete marker: write over it with its revision
    return base64.b64decode(message.get("data") or ""), int(message["seq"])


def is_removal(headers: str | None) -> bool:
    """Whether a stored message is a delete or purge marker (its `KV-Operation` header)."""
    for line in base64.b64decode(headers or "").split(b"\r\n"):
        name, _colon, value = line.partition(b":")
        if name.strip().lower() == b"kv-operation" and value.strip() in (b"DEL", b"PURGE"):
            return True
    return False


def written_revision(reply: Msg) -> int | None:
    """A publish acknowledgement: the new revision, or None when the compare-and-set lost."""
    answer = api_answer(reply)
    error = answer.get("error")
    if isinstance(error, dict):
        if error.get("err_code") in LOST_RACE_CODES:
            return None
        raise NatsUnavailable(f"JetStream refused a write: {error.get('description')}")
    return int(answer["seq"])

"""The outcome of an Invoke kept for the SDK that sends the same call again.

An SDK retries a call whose answer it did not get (a timeout, a dropped connection) with the same
`amz-sdk-invocation-id`: the retry waits for, and gets, the first run's answer instead of running
the function twice. Answers are let go after DEDUP_S, past DEDUP_MAX calls or past `dedup_bytes`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lambdad.api.params import Response
from lambdad.clock import Clock

if TYPE_CHECKING:
    import asyncio

#: How long the outcome of a call is kept for an SDK that sends the same call again.
DEDUP_S = 15 * 60
DEDUP_MAX = 10_000
#: ... and at most this many bytes of their answers, oldest out first (a retry of one let go runs again).
DEDUP_BYTES = 64 * 1024 * 1024


@dataclass
class _Call:
    """One SDK call (by its amz-sdk-invocation-id): a retry of it waits for, and gets, the same answer."""

    function: str
    answer: asyncio.Future = field(repr=False)
    at_mono: float = 0.0
    size: int = 0  #: the answer's bytes, once it is known


class SdkRetries:
    """The calls seen lately, by invocation id, oldest first. Used from the event loop's thread only."""

    def __init__(self, clock: Clock, dedup_bytes: int = DEDUP_BYTES) -> None:
        self._clock = clock
        self.dedup_bytes = dedup_bytes
        self.cached_bytes = 0  #: the bytes of answers kept for SDK retries (at most `dedup_bytes`)
        self._calls: OrderedDict[str, _Call] = OrderedDict()

    async def answer(self, call_id: str, function: str, run: Callable[[], Awaitable[Response]]) -> Response:
        """The answer of call `call_id` to `function`: the earlier run's when this is a retry, else `run()`'s."""
        import asyncio  # (here: asyncio costs 20 ms of start-up, and the HTTP thread imports it anyway)

        self._expire()
        earlier = self._calls.get(call_id)
        if earlier is not None and earlier.function == function:
            return await asyncio.shield(earlier.answer)  # the SDK sent it again: same run, same answer
        if earlier is not None:  # the same id for another function: this call takes it over
            self._drop(call_id)
        call = _Call(function, asyncio.get_running_loop().create_future(), self._clock.monotonic())
        self._calls[call_id] = call
        try:
            answer = await run()
        except BaseException as e:
            if self._calls.get(call_id) is call:
                self._drop(call_id)  # refused (throttled, invalid...): a retry is a new attempt
            call.answer.set_exception(e)
            call.answer.exception()  # (retrieved: no "never retrieved" warning when nobody waits)
            raise
        call.answer.set_result(answer)
        if self._calls.get(call_id) is call:
            call.size = len(answer[2]) + sum(len(k) + len(v) for k, v in answer[1])
            self.cached_bytes += call.size
            self._expire()
        return answer

    def _expire(self) -> None:
        """Let go of answers older than DEDUP_S, and of the oldest past DEDUP_MAX calls or `dedup_bytes`.
        A call still running stays (its retries wait for it) and takes no bytes yet."""
        now_mono = self._clock.monotonic()
        count, cached, done = len(self._calls), self.cached_bytes, []
        for call_id, call in self._calls.items():
            if count <= DEDUP_MAX and cached <= self.dedup_bytes and now_mono - call.at_mono < DEDUP_S:
                break
            if call.answer.done():
                done.append(call_id)
                count, cached = count - 1, cached - call.size
        for call_id in done:
            self._drop(call_id)

    def _drop(self, call_id: str) -> None:
        call = self._calls.pop(call_id)
        self.cached_bytes -= call.size

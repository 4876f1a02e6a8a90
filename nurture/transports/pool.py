"""Several connections to one relay, sending in parallel: speed over a real distance.

One SMTP conversation costs two or three round trips per message; a relay
30 ms away allows about a dozen messages a second on one connection, whatever
the machine. `TransportPool` keeps `size` copies of a transport (each with
its own connection) and sends a batch through all of them at once, bounded
by `size` (`sending.connections` in nurture.yaml: what the relay allows).

The engine's guarantee is kept per connection: outcomes are recorded by the
calling thread as each message's fate is known, and `before_deliver` (the
engine's "previous outcomes are committed") runs before each message is
handed to a connection. A crash can therefore resend at most one message per
connection: the ones the relay had accepted but whose outcome was not yet
committed.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from nurture.transports.base import (
    DeliveryError,
    Gate,
    MessageSigner,
    TransientDeliveryError,
    Transport,
)
from nurture.transports.message import Delivery, OutgoingEmail
from nurture.transports.mime import BuiltMessage

Result = Delivery | DeliveryError
logger = logging.getLogger(__name__)


class TransportPool(Transport):
    """`size` copies of one transport (see the module docstring); thread-safe."""

    def __init__(self, make: Callable[[], Transport], size: int) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self.size = size
        self._lanes = [make() for _ in range(size)]
        self._idle: queue.LifoQueue[Transport] = queue.LifoQueue()
        for lane in self._lanes:
            self._idle.put(lane)
        self._executor: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"TransportPool({self._lanes[0]!r} × {self.size})"

    @property
    def signer(self) -> MessageSigner | None:
        return self._lanes[0].signer

    @signer.setter
    def signer(self, value: MessageSigner | None) -> None:
        for lane in self._lanes:
            lane.signer = value

    @property
    def connections_opened(self) -> int:
        return sum(int(getattr(lane, "connections_opened", 0)) for lane in self._lanes)

    def send(
        self,
        email: OutgoingEmail,
        before_deliver: Callable[[], None] | None = None,
        gate: Gate | None = None,
    ) -> Delivery:
        lane = self._idle.get()
        try:
            return lane.send(email, before_deliver, gate)
        finally:
            self._idle.put(lane)

    def send_many(
        self,
        emails: Iterable[OutgoingEmail],
        on_result: Callable[[int, Result], None] | None = None,
        before_deliver: Callable[[], None] | None = None,
        gate: Gate | None = None,
    ) -> list[Result]:
        """As `Transport.send_many`, with up to `size` messages in flight; `on_result` runs
        in the calling thread as each completes (not necessarily in order)."""
        executor = self._pool()
        results: dict[int, Result] = {}
        in_flight: dict[Future[Result], int] = {}
        down: list[DeliveryError] = []

        def collect(futures: Iterable[Future[Result]]) -> None:
            for future in futures:
                index = in_flight.pop(future)
                result = future.result()  # a ConfigurationError stops the batch here
                results[index] = result
                if on_result is not None:
                    on_result(index, result)

        count = 0
        pending = iter(emails)
        try:
            while True:
                # A free connection first, then the next email: an email composed (and
                # its place in `sending.rate` taken) leaves at once, not after a wait.
                if len(in_flight) >= self.size:
                    finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                    collect(finished)
                collect([f for f in list(in_flight) if f.done()])
                email = next(pending, None)
                if email is None:
                    break
                if before_deliver is not None:
                    before_deliver()
                in_flight[executor.submit(self._one, email, down, gate)] = count
                count += 1
            collect(wait(in_flight).done)
        except BaseException:
            # The batch stops (a configuration error, a failing callback), but messages on
            # the other connections may already be with the relay: their outcomes are
            # recorded before the error goes up, or their sends, still leased, would be
            # taken again once the lease ran out and sent twice.
            self._settle(in_flight, on_result)
            raise
        return [results[index] for index in range(count)]

    @staticmethod
    def _settle(
        in_flight: dict[Future[Result], int], on_result: Callable[[int, Result], None] | None
    ) -> None:
        for future in wait(in_flight).done:
            index = in_flight.pop(future)
            error = future.exception()
            if error is None and on_result is not None:
                try:
                    on_result(index, future.result())
                except Exception:  # the first error is the one that goes up
                    logger.exception("could not record the outcome of a message in flight")

    def _one(self, email: OutgoingEmail, down: list[DeliveryError], gate: Gate | None) -> Result:
        if down:
            # One connection could not reach the relay in this batch: the rest
            # would each spend a timeout finding the same.
            return TransientDeliveryError(
                f"not attempted: {down[0].reason}", send_id=email.send_id, recipient=email.to
            )
        lane = self._idle.get()
        try:
            # The rate gate runs in the connection's thread, just before MAIL FROM.
            return lane.send(email, gate=gate)
        except DeliveryError as error:
            if getattr(error, "unreachable", False):
                down.append(error)
            return error
        finally:
            self._idle.put(lane)

    def _pool(self) -> ThreadPoolExecutor:
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(self.size, thread_name_prefix="nurture-send")
            return self._executor

    def close(self) -> None:
        for lane in self._lanes:
            lane.close()

    def _deliver(self, message: BuiltMessage, email: OutgoingEmail) -> None:
        lane = self._idle.get()
        try:
            lane._deliver(message, email)
        finally:
            self._idle.put(lane)

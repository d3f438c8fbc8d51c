"""``BridgeClient``: one helper action, from the ready check to a result or a typed error.

Modes: *non-launching* (RPC, ``imsg status``): without the ready lock the call fails at once
and writes nothing. *Launching* (CLI bridge commands): ``launch`` is called first when the
lock is absent (``imsg launch``'s flow), then the call proceeds.

Transport: IPC v2 (``ipc``), or legacy v1 (``legacy``) when ``IMSG_BRIDGE_LEGACY_IPC`` is set;
delivery objects name it ``bridge_v2`` / ``bridge_legacy``.

Failures (``imsg.errors``), for a mutation (``actions.is_mutation``), as delivery errors with
``operation`` = the action:

- no ready lock: ``BridgeNotReady`` (``not_started``, -32603);
- not published (unsafe container, write or rename failed): ``SendError`` ``not_started``;
- the helper answered ``success: false``: ``SendError`` with its error text, disposition the
  helper's when it names one, else ``may_have_completed``;
- no answer: ``DeliveryUnknown`` with the reclaimed disposition (``not_started`` when the
  unclaimed request was withdrawn; ``still_in_flight`` carries ``settled`` for the RPC lane);
  cancelled (``cancel_all``, Ctrl-C): ``SendInterrupted`` with that disposition;
- a malformed answer (invalid JSON, wrong id, oversized, a symlink): ``DeliveryUnknown``
  ``may_have_completed``.

For any other action: ``BridgeUnavailable`` (-32003) without the ready lock, else
``BridgeError`` (-32603) saying what went wrong. Nothing is ever retried here, so no request
can run twice because of imsg.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from imsg.bridge import actions, ipc, legacy
from imsg.bridge.container import Container
from imsg.bridge.envelope import Malformed, Response
from imsg.bridge.outcome import Unanswered, Unpublished
from imsg.errors import (
    BridgeError,
    BridgeNoAnswer,
    BridgeNotReady,
    BridgeUnavailable,
    DeliveryUnknown,
    ImsgError,
    SendError,
    SendInterrupted,
)

_waiting: set[threading.Event] = set()
_waiting_lock = threading.Lock()


def cancel_all() -> None:
    """Cancel every bridge call waiting in this process (RPC shutdown on a signal)."""
    with _waiting_lock:
        for event in _waiting:
            event.set()


class BridgeClient:
    def __init__(self, container: Container | None = None, *,
                 launch: Callable[[], None] | None = None, legacy_ipc: bool | None = None,
                 poll_s: float | None = None) -> None:
        self.container = container or Container.default()
        self.launch = launch
        self.legacy = legacy.enabled() if legacy_ipc is None else legacy_ipc
        self.poll_s = poll_s

    @property
    def transport(self) -> str:
        return "bridge_legacy" if self.legacy else "bridge_v2"

    def ready(self) -> bool:
        return self.container.is_ready()

    def call(self, action: str, params: dict[str, Any] | None = None, *,
             timeout_s: float | None = None, mutation: bool | None = None) -> dict[str, Any]:
        """The helper's ``data`` for ``action`` (module docstring for the failures)."""
        mutation = actions.is_mutation(action) if mutation is None else mutation
        if not self.ready() and self.launch is not None:
            self.launch()
        if not self.ready():
            if mutation:
                raise BridgeNotReady(action, self.transport)
            raise BridgeUnavailable()
        timeout = actions.deadline_s(action) if timeout_s is None else timeout_s
        cancel = threading.Event()
        with _waiting_lock:
            _waiting.add(cancel)
        try:
            response = self._exchange(action, params or {}, timeout, cancel)
        except KeyboardInterrupt:
            raise self._interrupted(action, mutation) from None
        except Unpublished as exc:
            raise self._unpublished(action, mutation, str(exc)) from None
        except Unanswered as exc:
            raise self._unanswered(action, mutation, exc) from None
        except Malformed as exc:
            raise self._malformed(action, mutation, str(exc)) from None
        finally:
            with _waiting_lock:
                _waiting.discard(cancel)
        if response.success:
            return response.data
        raise self._refused(action, mutation, response)

    def _exchange(self, action: str, params: dict[str, Any], timeout: float,
                  cancel: threading.Event) -> Response:
        if self.legacy:
            return legacy.exchange(self.container, action, params, timeout_s=timeout,
                                   poll_s=self.poll_s or legacy.POLL_S, cancel=cancel)
        return ipc.exchange(self.container, action, params, timeout_s=timeout,
                            poll_s=self.poll_s or ipc.POLL_S, cancel=cancel)

    # --- failures ------------------------------------------------------------------------------

    def _unpublished(self, action: str, mutation: bool, detail: str) -> ImsgError:
        text = f"The bridge request was not published: {detail}"
        if mutation:
            return SendError(text, disposition="not_started", transport=self.transport,
                             operation=action)
        return BridgeError(f"bridge {action}: {text}")

    def _unanswered(self, action: str, mutation: bool, exc: Unanswered) -> ImsgError:
        text = f"The bridge {action} request got no usable answer ({exc.detail})."
        if not mutation:
            return BridgeNoAnswer(f"bridge {action}: {exc.detail}")
        error: SendError
        if exc.cancelled:
            error = SendInterrupted(text, disposition=exc.disposition, transport=self.transport,
                                    operation=action)
        else:
            error = DeliveryUnknown(text, disposition=exc.disposition, transport=self.transport,
                                    operation=action)
        error.settled = exc.settled
        return error

    def _malformed(self, action: str, mutation: bool, detail: str) -> ImsgError:
        if mutation:
            return DeliveryUnknown(f"The bridge answered {action} with an invalid response: "
                                   f"{detail}.", transport=self.transport, operation=action)
        return BridgeError(f"bridge {action}: invalid response: {detail}")

    def _refused(self, action: str, mutation: bool, response: Response) -> ImsgError:
        text = response.error or f"the helper reported failure for {action}"
        if mutation:
            disposition = response.disposition or "may_have_completed"
            return SendError(text, disposition=disposition,  # type: ignore[arg-type]
                             transport=self.transport, operation=action)
        return BridgeError(text)

    def _interrupted(self, action: str, mutation: bool) -> ImsgError:
        """Ctrl-C while waiting: nothing is known; the request may still run."""
        if mutation:
            return SendInterrupted(f"Interrupted while waiting for the bridge to answer {action}"
                                   "; it may still happen.", disposition="still_in_flight",
                                   transport=self.transport, operation=action)
        return BridgeError(f"bridge {action}: interrupted")

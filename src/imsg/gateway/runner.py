"""Running the gateway: every enabled account, each with its own child, supervisor, cursor and
pairing scope, until asked to stop.

An account that cannot start (its handler does not import, say) is logged, recorded as its
``last_error`` and left out; the others run. ``stop`` is the clean stop: intake pauses, running
handlers get ``shutdownGraceMs`` to finish and deliver, rows not started stay journaled for
the next start, then each child is unsubscribed and stopped.

The state directory is ``--state-dir``, else ``$IMSG_STATE_DIR``, else the platform's
per-user state directory (``platformdirs``: ``~/.local/state/imsg`` on Linux,
``~/Library/Application Support/imsg`` on macOS).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from imsg.errors import StateError
from imsg.gateway.client import RpcClient
from imsg.gateway.config import AccountConfig, GatewayConfig
from imsg.gateway.delivery import Outbox
from imsg.gateway.guards import EchoCache
from imsg.gateway.handlers import Handler, HandlerError, make_handler
from imsg.gateway.pipeline import Pipeline
from imsg.gateway.probe import ChildInfo
from imsg.gateway.state import State
from imsg.gateway.supervisor import Supervisor

PRUNE_EVERY_S = 600.0


def default_state_dir() -> str:
    env = os.environ.get("IMSG_STATE_DIR")
    if env:
        return os.path.expanduser(env)
    import platformdirs

    return platformdirs.user_state_dir("imsg")


def configured_handler(account: AccountConfig) -> Handler | None:
    """The handler the account's configuration names (None: none configured)."""
    return make_handler(account.handler) if account.handler else None


@dataclass
class Account:
    config: AccountConfig
    outbox: Outbox
    pipeline: Pipeline
    supervisor: Supervisor
    task: asyncio.Task[None] | None = None


class Gateway:
    def __init__(self, config: GatewayConfig, state_dir: str, *,
                 log: logging.Logger | None = None, env: dict[str, str] | None = None,
                 handler_factory: Callable[[AccountConfig], Handler | None] | None = None,
                 ) -> None:
        self.config = config
        self.handler_factory = handler_factory or configured_handler
        self.state_dir = state_dir
        self.log = log or logging.getLogger("imsg.gateway")
        self.env = env
        self.state = State(state_dir)
        self.accounts: dict[str, Account] = {}
        self._stopped = asyncio.Event()
        self._maintenance: asyncio.Task[None] | None = None

    def build(self, account: AccountConfig) -> Account:
        """The runtime of one account (raises HandlerError when its handler cannot load)."""
        handler = self.handler_factory(account)
        echo = EchoCache()
        holder: list[Supervisor] = []

        async def source(timeout: float) -> tuple[RpcClient, ChildInfo]:
            return await holder[0].client_for(timeout)

        outbox = Outbox(account, echo, source,
                        restart=lambda reason: holder[0].request_restart(reason), log=self.log)
        pipeline = Pipeline(account, self.state, outbox, handler,
                            media_dir=os.path.join(self.state_dir, "media"), log=self.log)
        supervisor = Supervisor(account, self.state, pipeline, log=self.log, env=self.env)
        holder.append(supervisor)
        return Account(account, outbox, pipeline, supervisor)

    async def start(self) -> None:
        for config in self.config.enabled_accounts:
            try:
                account = self.build(config)
            except HandlerError as err:
                self.log.error("[%s] not started: handler: %s", config.id, err)
                with contextlib.suppress(StateError):
                    self.state.record_error(config.id, f"handler: {err}")
                continue
            account.task = asyncio.create_task(account.supervisor.run())
            self.accounts[config.id] = account
            self.log.info("[%s] started: %s (dmPolicy=%s, groupPolicy=%s)", config.id,
                          " ".join(config.argv()), config.dm_policy, config.group_policy)
        if not self.accounts:
            self.log.error("no account could start")
        self._maintenance = asyncio.create_task(self._prune_loop())

    async def _prune_loop(self) -> None:
        while True:
            for account_id in self.accounts:
                with contextlib.suppress(StateError):
                    self.state.prune(account_id)
            await asyncio.sleep(PRUNE_EVERY_S)

    async def stop(self) -> None:
        if self._maintenance is not None:
            self._maintenance.cancel()
        accounts = list(self.accounts.values())
        await asyncio.gather(*(a.pipeline.stop(a.config.shutdown_grace_s) for a in accounts))
        for account in accounts:
            await account.supervisor.stop()
        await asyncio.gather(*(a.task for a in accounts if a.task is not None),
                             return_exceptions=True)
        for account in accounts:
            close = getattr(account.pipeline.handler, "aclose", None)
            if close is not None:
                await close()
        self.state.close()
        self._stopped.set()

    async def run(self) -> None:
        """Start, then run until SIGTERM/SIGINT, then stop cleanly."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await self.start()
            await stop.wait()
            self.log.info("stopping: waiting for running handlers")
            await self.stop()
        finally:
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)

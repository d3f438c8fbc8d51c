"""Short-lived use of an account's child, for the CLI: probe it, send through it, stop it.

Every failure of the child becomes ``ChildFailed`` (with the JSON-RPC ``code``/``data`` when it
answered an error); a send whose outcome is unknown becomes ``DeliveryUnknown``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from imsg.errors import ChildFailed, DeliveryUnknown
from imsg.gateway.client import ClientGone, RpcClient, RpcError
from imsg.gateway.config import AccountConfig
from imsg.gateway.delivery import Outbox, Sent
from imsg.gateway.guards import EchoCache
from imsg.gateway.handlers import Reply
from imsg.gateway.probe import ChildInfo, probe
from imsg.gateway.state import State

T = TypeVar("T")
_quiet = logging.getLogger("imsg.gateway.oneshot")
_quiet.propagate = False
_quiet.addHandler(logging.NullHandler())


async def _ignore(method: str, params: dict[str, Any]) -> None:
    return None


async def with_child(account: AccountConfig,
                     use: Callable[[RpcClient, ChildInfo], Awaitable[T]], *,
                     env: dict[str, str] | None = None) -> T:
    """Spawn and probe the account's child, run ``use``, stop the child. Raises ChildFailed."""
    client = await RpcClient.start(account.argv(), notify=_ignore,
                                   name=f"imsg rpc [{account.id}]", log=_quiet, env=env)
    try:
        try:
            info = await probe(client, account.probe_timeout_s)
            return await use(client, info)
        except RpcError as err:
            raise ChildFailed(str(err), code=err.code, data=err.data) from None
        except ClientGone as err:
            raise ChildFailed(str(err)) from None
    finally:
        await client.stop()


async def probe_account(account: AccountConfig, *,
                        env: dict[str, str] | None = None) -> ChildInfo:
    async def use(_client: RpcClient, info: ChildInfo) -> ChildInfo:
        return info

    return await with_child(account, use, env=env)


async def send(account: AccountConfig, target: str, reply: Reply, state: State | None, *,
               env: dict[str, str] | None = None) -> list[Sent]:
    """Send ``reply`` to ``target`` the way the gateway does (chunks, files, echo record in
    ``state`` so a running gateway knows the echo). Raises ChildFailed / DeliveryUnknown /
    the target's InvalidTarget."""
    from imsg.gateway.delivery import send_params

    send_params(target, account)  # a bad target fails before any child starts

    async def use(client: RpcClient, info: ChildInfo) -> list[Sent]:
        async def source(_timeout: float) -> tuple[RpcClient, ChildInfo]:
            return client, info

        outbox = Outbox(account, EchoCache(), source, state=state, log=_quiet,
                        clock=time.time)
        return await outbox.deliver(target, reply)

    outcomes = await with_child(account, use, env=env)
    unknown = [o for o in outcomes if o.unknown]
    failed = [o for o in outcomes if not o.ok and not o.unknown]
    if unknown:
        raise DeliveryUnknown(f"outcome unknown, not retried (it may have been delivered): "
                              f"{unknown[0].error}")
    if failed:
        raise ChildFailed(f"send failed: {failed[0].error}")
    return outcomes


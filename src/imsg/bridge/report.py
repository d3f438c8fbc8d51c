"""``imsg status``: whether advanced (bridge) features work here, as the Swift tool reports it
and as OpenClaw's probe reads it (``privateApi.available = exit 0 && advanced_features &&
v2_ready``, from the last JSON line).

1. SIP from ``csrutil status`` (``host.sip_status``);
2. available = the helper dylib is found, SIP is disabled and the ready lock exists;
3. only then the helper is probed (``status`` action, 3 s): no answer in time marks it
   *unresponsive*; other probe failures leave the defaults and do not;
4. advanced = available and not unresponsive.

Nothing is launched or injected. ``helper_version_mismatch`` (a message) appears only when a
probe answered without a ``helper_version``: imsg's version numbers are its own, so a
versioned helper is never reported stale for differing from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from imsg import version
from imsg.bridge.client import BridgeClient
from imsg.bridge.container import Container
from imsg.bridge.host import Sip, dylib_candidates, find_dylib, sip_status
from imsg.bridge.launch import SIP_ENABLED, dylib_not_found, sip_unknown
from imsg.bridge.probe import HelperStatus, probe
from imsg.errors import BridgeNoAnswer, ImsgError

UNRESPONSIVE = ("The IMCore bridge is not responding.\nMessages.app may be running with a stale "
                "or hung helper.\nRe-inject it with `imsg launch`.")
CONNECTED = "Connected to Messages.app. IMCore features available."
NOT_INJECTED = (
    "SIP is disabled and the helper dylib is present, but Messages.app is not currently "
    "injected.\nRun `imsg launch` to enable advanced IMCore features.\n\nNote: macOS 26/Tahoe "
    "can still block advanced IMCore features through\nlibrary validation or imagent private "
    "entitlement checks. Basic send,\nhistory, and watch commands do not use this path.")
UNVERSIONED = ("The injected bridge dylib predates release version reporting. Run `imsg launch` "
               "to relaunch Messages.app with the current dylib.")


@dataclass
class Report:
    version: str
    sip: Sip
    available: bool
    unresponsive: bool
    message: str
    helper: HelperStatus | None = None
    rpc_methods: list[str] = field(default_factory=list)

    @property
    def advanced(self) -> bool:
        return self.available and not self.unresponsive

    @property
    def mismatch(self) -> str | None:
        if self.helper is None or self.helper.helper_version:
            return None
        return UNVERSIONED

    def to_json(self) -> dict[str, Any]:
        """The Swift tool's keys, in its order."""
        helper = self.helper
        out: dict[str, Any] = {
            "version": self.version, "basic_features": True,
            "advanced_features": self.advanced, "typing_indicators": self.advanced,
            "read_receipts": self.advanced, "sip": self.sip.state, "message": self.message,
            "bridge_version": helper.bridge_version or 0 if helper else 0,
            "v2_ready": helper.v2_ready if helper else False,
        }
        if helper is not None and helper.helper_version:
            out["helper_version"] = helper.helper_version
        if self.mismatch:
            out["helper_version_mismatch"] = self.mismatch
        out["selectors"] = dict(helper.selectors) if helper else {}
        out["rpc_methods"] = self.rpc_methods
        out["capabilities"] = capabilities(helper)
        return out

    def text(self) -> list[str]:
        lines = ["imsg Status Report", "==================", "", "Version:", f"  {self.version}",
                 "", "Basic features (send, receive, history):", "  Available", "",
                 "System Integrity Protection (SIP):", f"  {self.sip.state}", "",
                 "Advanced features (typing, read receipts):"]
        if self.unresponsive:
            lines.append("  Unavailable - IMCore bridge is not responding")
            lines += [f"  {line}" for line in UNRESPONSIVE.splitlines()]
        elif self.available:
            lines += self._available_lines()
        else:
            lines += ["  Not available", "",
                      "To enable advanced features:",
                      "  1. Disable System Integrity Protection (restart in Recovery mode, run "
                      "`csrutil disable`)",
                      "  2. Grant Full Disk Access to your terminal (System Settings > Privacy "
                      "& Security)",
                      "  3. Install the helper dylib (source installs: `make build-dylib`), "
                      "then run `imsg launch`",
                      "", "Note: macOS 26/Tahoe can still block advanced IMCore features "
                      "through",
                      "library validation or imagent private entitlement checks.",
                      "", "Note: Basic messaging features work without these steps."]
        return lines

    def _available_lines(self) -> list[str]:
        helper = self.helper
        lines = ["  Available - IMCore bridge connected"]
        bridge = f"  bridge version: v{helper.bridge_version or 0 if helper else 0}"
        if helper is not None and helper.v2_ready:
            bridge += " (v2 inbox active)"
        lines.append(bridge)
        if helper is not None and helper.helper_version:
            lines.append(f"  helper dylib version: {helper.helper_version}")
        if self.mismatch:
            lines += ["", f"  WARNING: {self.mismatch}"]
        lines.append("  selectors:")
        for name, value in sorted((helper.selectors if helper else {}).items()):
            lines.append(f"    {name}: {'✓' if value else '✗'}")
        sticker = ", send-sticker" if helper is not None and helper.selector("stickerSend") \
            else ""
        lines += ["", "Available bridge commands:",
                  f"  Send: imsg send-rich, send-multipart, send-attachment{sticker}, tapback",
                  "  Mutate: imsg edit, unsend, delete-message, notify-anyways",
                  "  Chat: imsg chat-create, chat-name, chat-photo, chat-add/remove-member, "
                  "chat-leave/delete, chat-mark",
                  "  Introspect: imsg account, whois, nickname",
                  "  Name & Photo: imsg name-photo status|share",
                  "  Local DB: imsg search",
                  "  Watch with events: imsg watch --bb-events"]
        return lines


def capabilities(helper: HelperStatus | None) -> dict[str, Any]:
    features = ({"tapback.emoji": 2} if helper is not None and helper.selector("emojiTapbackSend")
                else {})
    return {"engine": {"version": version(), "commit": "unknown", "built_at": "unknown"},
            "features": features}


def rpc_methods(helper: HelperStatus | None) -> list[str]:
    """Every RPC method of this build, ``send.tracked`` only with the helper's selector."""
    from imsg.rpc.catalog import supported_methods

    tracked = helper is not None and helper.selector("clientMessageGuidReservation")
    return [m for m in supported_methods() if tracked or m != "send.tracked"]


def build(container: Container | None = None) -> Report:
    """Steps 1–4 of the module docstring; never raises."""
    container = container or Container.default()
    sip = sip_status()
    dylib = find_dylib()
    lock = container.is_ready()
    available = dylib is not None and sip.state == "disabled" and lock
    if dylib is None:
        message = dylib_not_found(dylib_candidates())
    elif sip.state == "enabled":
        message = SIP_ENABLED
    elif sip.state == "unknown":
        message = sip_unknown(sip.details)
    else:
        message = CONNECTED if lock else NOT_INJECTED
    helper: HelperStatus | None = None
    unresponsive = False
    if available:
        try:
            helper = probe(BridgeClient(container))
        except BridgeNoAnswer:
            unresponsive = True
        except ImsgError:
            helper = None
    if unresponsive:
        message = UNRESPONSIVE
    return Report(version(), sip, available, unresponsive, message, helper,
                  rpc_methods(helper))

"""``imsg status``: basic and advanced (bridge) features here, as OpenClaw probes them."""

from __future__ import annotations

from typing import Any

import click

from imsg.cli.options import Output, handles_errors, json_option


@click.command()
@json_option
@handles_errors
def status(as_json: bool, **_: Any) -> None:
    """Report what works on this Mac: basic messaging always; advanced features (typing,
    read receipts, tapbacks, edits, effects, groups) when the IMCore bridge helper is
    injected into Messages (SIP off, `imsg launch`). Never launches or injects anything.

    With --json: one line with version, basic_features, advanced_features,
    typing_indicators, read_receipts, sip, message, bridge_version, v2_ready, selectors,
    rpc_methods and capabilities.

    \b
    Example:
      imsg status
      imsg status --json
    """
    from imsg.bridge.report import build

    report = build()
    out = Output(as_json)
    if as_json:
        out.obj(report.to_json())
        return
    for line in report.text():
        out.line(line)

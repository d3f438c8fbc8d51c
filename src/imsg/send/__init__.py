"""Sending through Messages.app: targets, the fixed AppleScripts, file staging, verification.

The public entry points are ``imsg.send.sender.send``/``react``,
``imsg.send.status.send_status``, ``imsg.send.targets.target_from_fields``/``parse_target``
and ``imsg.send.children.terminate_all`` (stop every osascript in flight at shutdown); this
package imports nothing so ``imsg`` stays fast to start for commands that never send.
"""

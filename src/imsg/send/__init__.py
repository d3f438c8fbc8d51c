"""Sending through Messages.app: targets, the fixed AppleScripts, file staging, verification.

The public entry points are ``imsg.send.sender.send``/``react`` and
``imsg.send.targets.parse_target``; this package imports nothing so ``imsg`` stays fast to
start for commands that never send.
"""

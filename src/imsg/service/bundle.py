"""The Full Disk Access holder on macOS: a small app bundle whose launcher runs ``imsg rpc``.

macOS attributes a process's file access to its *responsible* process: for a launchd agent
that is the program launchd started, and its children inherit it. If the agent runs Python,
Python holds Full Disk Access, and so does every script anyone ever runs with it. So the agent
runs ``~/Applications/imsg-rpc.app`` instead, whose executable starts the one fixed command
``<python> -m imsg rpc --socket … --log-file … --exit-with-parent [--db …]`` as its child
and stays its parent; the bundle is what the user adds under Full Disk Access.

Two ways to build it, with tools every Mac has (nothing is downloaded):

- ``clang``, when the Command Line Tools are installed (checked first with ``xcode-select
  -p``): a 60-line C launcher (``launcher_source``). It blocks SIGTERM/SIGINT/SIGHUP while
  spawning, forwards them to the child, exits with the child's status (128 + signal when
  killed), and truncates its log when it passes ``LOG_LIMIT`` (a crash loop before Python's
  own capped log takes over cannot fill the disk). The command is compiled in: the bundle can
  start nothing else.
- otherwise ``osacompile``: an AppleScript applet whose ``do shell script`` runs the same
  command; the child stops by itself when the applet is gone (``--exit-with-parent``).

``Info.plist`` marks it a background app (``LSUIElement``, no Dock icon) with identifier
``com.imsg.rpc``. The source is kept next to the install record: an install whose source,
signing identity and bundle are unchanged keeps the bundle untouched (and its grant valid).
"""

from __future__ import annotations

import os
import plistlib
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from imsg.rpc.logsetup import MAX_LOG_BYTES
from imsg.service.host import APP_NAME, LABEL, Host
from imsg.service.steps import Runner, Step
from imsg.service.text import applescript_string, c_string

Builder = Literal["clang", "osacompile"]
LOG_LIMIT = 2 * MAX_LOG_BYTES
BACKGROUND_KEYS = {"CFBundleIdentifier": LABEL, "CFBundleName": APP_NAME,
                   "LSUIElement": True, "LSBackgroundOnly": True}


@dataclass(frozen=True)
class Bundle:
    path: str
    builder: Builder
    source_path: str
    source: str

    @property
    def executable(self) -> str:
        name = APP_NAME if self.builder == "clang" else "applet"
        return os.path.join(self.path, "Contents", "MacOS", name)

    @property
    def staging(self) -> str:
        return self.path + ".new"


def choose_builder(runner: Runner) -> Builder:
    """clang when the Command Line Tools are installed (asking ``xcode-select -p`` first, so
    the shim never pops up an install dialog), else osacompile."""
    code, _ = runner(["xcode-select", "-p"])
    if code == 0 and runner(["clang", "--version"])[0] == 0:
        return "clang"
    return "osacompile"


def plan_bundle(host: Host, command: Sequence[str], builder: Builder) -> Bundle:
    if builder == "clang":
        return Bundle(host.bundle_path, builder, os.path.join(host.state_dir, "launcher.c"),
                      launcher_source(command))
    return Bundle(host.bundle_path, builder, os.path.join(host.state_dir, "launcher.applescript"),
                  applet_source(command, host.log_path))


def info_plist() -> str:
    info = {
        **BACKGROUND_KEYS,
        "CFBundleDisplayName": "imsg rpc",
        "CFBundleExecutable": APP_NAME,
        "CFBundlePackageType": "APPL",
        "CFBundleInfoDictionaryVersion": "6.0",
        "CFBundleShortVersionString": "1",
        "CFBundleVersion": "1",
    }
    return plistlib.dumps(info).decode("utf-8")


def build_steps(bundle: Bundle, sign: Sequence[str]) -> list[Step]:
    """Write the source, build the bundle beside the old one, sign it, swap it in."""
    staging = bundle.staging
    steps = [
        Step("write", bundle.source_path, bundle.source, why="the launcher's source"),
        Step("remove", staging, why="a leftover of an interrupted build"),
    ]
    if bundle.builder == "clang":
        macos = os.path.join(staging, "Contents", "MacOS")
        steps += [
            Step("mkdir", macos),
            Step("write", os.path.join(staging, "Contents", "Info.plist"), info_plist()),
            Step("run", argv=("clang", "-Os", "-Wall", "-Werror", "-o",
                              os.path.join(macos, APP_NAME), bundle.source_path)),
        ]
    else:
        steps += [
            Step("run", argv=("osacompile", "-o", staging, bundle.source_path)),
            Step("set-keys", os.path.join(staging, "Contents", "Info.plist"),
                 keys=dict(BACKGROUND_KEYS), why="a background app with imsg's identifier"),
        ]
    steps += [
        Step("run", argv=(*sign, staging)),
        Step("swap", bundle.path, source=staging, why="refresh the bundle in place"),
    ]
    return steps


def launcher_source(command: Sequence[str]) -> str:
    """The C launcher that runs ``command`` (absolute path first) as its child."""
    argv = ",\n".join(f"    {c_string(arg)}" for arg in command)
    return f"""\
/* {APP_NAME}: holds Full Disk Access for imsg. Generated by `imsg service install`.
 * Starts exactly one command as its child and stays its parent, so macOS attributes the
 * child's file access to this bundle. Signals are forwarded; the exit status is the child's. */
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static char *const command[] = {{
{argv},
    NULL
}};
static volatile sig_atomic_t child = 0;

static void forward(int sig) {{
    if (child > 0)
        kill((pid_t)child, sig);
}}

int main(void) {{
    struct stat log;
    if (fstat(2, &log) == 0 && S_ISREG(log.st_mode) && log.st_size > {LOG_LIMIT}LL)
        (void)ftruncate(2, 0);

    static const int forwarded[] = {{SIGTERM, SIGINT, SIGHUP}};
    sigset_t blocked, previous, none;
    sigemptyset(&blocked);
    sigemptyset(&none);
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = forward;
    sigemptyset(&action.sa_mask);
    for (unsigned i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++) {{
        sigaddset(&blocked, forwarded[i]);
        sigaction(forwarded[i], &action, NULL);
    }}
    sigprocmask(SIG_BLOCK, &blocked, &previous);

    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int err = posix_spawn(&pid, command[0], NULL, &attr, command, environ);
    posix_spawnattr_destroy(&attr);
    if (err != 0) {{
        fprintf(stderr, "{APP_NAME}: cannot start %s: %s\\n", command[0], strerror(err));
        return 127;
    }}
    child = pid;
    sigprocmask(SIG_SETMASK, &previous, NULL);

    int status;
    while (waitpid(pid, &status, 0) < 0) {{
        if (errno != EINTR) {{
            perror("{APP_NAME}: waitpid");
            return 1;
        }}
    }}
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    return 128 + WTERMSIG(status);
}}
"""


def applet_source(command: Sequence[str], log_path: str) -> str:
    """The AppleScript applet that runs ``command`` (its output appended to ``log_path``)
    and waits for it."""
    shell = f"exec {shlex.join(command)} >>{shlex.quote(log_path)} 2>&1"
    return (f"-- {APP_NAME}: holds Full Disk Access for imsg. Generated by `imsg service "
            "install`.\n"
            "-- Runs one command and waits for it; the command stops when this applet ends.\n"
            f"do shell script {applescript_string(shell)}\n")

"""Code signing of the bundle, and a local signing identity to do it with.

Full Disk Access is recorded against the bundle's *designated requirement*. Ad-hoc signed
(``codesign --sign -``), that requirement is the exact code hash, so any rebuilt bundle is a
stranger to the grant. Signed with a certificate from the user's keychain, it is "identifier
com.imsg.rpc and this certificate", which survives rebuilds and upgrades. A self-signed
certificate is enough; ``identity_steps`` makes one the way people do by hand:

1. ``openssl req -x509`` writes a key and a certificate with the code-signing extended key
   usage (config file below; works with macOS's LibreSSL and with OpenSSL 3);
2. ``openssl pkcs12 -export`` bundles them with SHA-1/3DES protection, the one ``security
   import`` reads, under a one-time random password;
3. ``security import`` adds the identity to the login keychain, usable by ``codesign``;
4. ``security add-trusted-cert -p codeSign`` trusts it for code signing (macOS asks for the
   user's password);
5. the temporary directory (0700) with the key is removed.

``read_signature`` reports what ``codesign -dv``, ``codesign -d -r-`` and ``codesign --verify``
say about a bundle, for the install record and ``imsg doctor``.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from typing import Any

from imsg.errors import InvalidInput, ServiceError
from imsg.service.host import LABEL, Host
from imsg.service.steps import Runner, Step

DEFAULT_IDENTITY = "imsg Local Signing"
IDENTITY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}")
FIND_IDENTITY = ("security", "find-identity", "-v", "-p", "codesigning")
_IDENTITY_LINE = re.compile(r'^\s*\d+\)\s+([0-9A-Fa-f]{40})\s+"(.*)"\s*$')


def sign_argv(identity: str | None) -> tuple[str, ...]:
    """``codesign`` arguments (the bundle path follows): the identity, or ad hoc."""
    return ("codesign", "--force", "--sign", identity or "-", "--identifier", LABEL,
            "--options", "runtime", "--timestamp=none")


def identities(runner: Runner) -> list[tuple[str, str]]:
    """The valid code-signing identities in the user's keychains: (SHA-1, name)."""
    code, output = runner(FIND_IDENTITY)
    if code != 0:
        return []
    return [(m.group(1).upper(), m.group(2)) for line in output.splitlines()
            if (m := _IDENTITY_LINE.match(line))]


def require_identity(name: str, runner: Runner) -> None:
    """ServiceError unless ``name`` (or a SHA-1) is a valid code-signing identity."""
    found = identities(runner)
    if any(name in (sha1, label) or name.upper() == sha1 for sha1, label in found):
        return
    have = ", ".join(f'"{label}"' for _, label in found) or "none"
    raise ServiceError(
        f'No valid code-signing identity "{name}" in your keychain (found: {have}). Create '
        f"one with `imsg service identity create --name \"{name}\"`, or install without "
        "--sign-identity (ad hoc).")


@dataclass(frozen=True)
class Signature:
    signed: bool
    adhoc: bool = False
    identifier: str | None = None
    authority: str | None = None
    team: str | None = None
    cdhash: str | None = None
    requirement: str | None = None
    valid: bool = False
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Signature:
        return cls(**{key: data[key] for key in cls.__dataclass_fields__ if key in data})


def read_signature(bundle: str, runner: Runner) -> Signature:
    """What codesign says about ``bundle``."""
    code, output = runner(["codesign", "-dv", "--verbose=4", bundle])
    if code != 0:
        return Signature(signed=False, detail=_first_line(output))
    fields: dict[str, str] = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    _, requirement_text = runner(["codesign", "-d", "-r-", bundle])
    requirement = next((line.split("=>", 1)[1].strip() for line in requirement_text.splitlines()
                        if line.startswith("designated =>")), None)
    verified, verify_text = runner(["codesign", "--verify", "--strict", bundle])
    team = fields.get("TeamIdentifier")
    return Signature(
        signed=True,
        adhoc=fields.get("Signature") == "adhoc" or "adhoc" in fields.get("CodeDirectory v", ""),
        identifier=fields.get("Identifier"), authority=fields.get("Authority"),
        team=None if team in (None, "not set") else team, cdhash=fields.get("CDHash"),
        requirement=requirement, valid=verified == 0,
        detail="" if verified == 0 else _first_line(verify_text))


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def check_identity_name(name: str) -> str:
    if not IDENTITY_NAME.fullmatch(name):
        raise InvalidInput(f"Invalid value for option: --name ({name!r}: letters, digits, "
                           "spaces, '.', '_' and '-', at most 64)")
    return name


def keychain(host: Host) -> str:
    return host.path("Library", "Keychains", "login.keychain-db")


def openssl_config(name: str) -> str:
    return "\n".join([
        "[req]", "distinguished_name = subject", "x509_extensions = codesign", "prompt = no",
        "", "[subject]", f"CN = {name}",
        "", "[codesign]", "basicConstraints = critical, CA:FALSE",
        "keyUsage = critical, digitalSignature", "extendedKeyUsage = critical, codeSigning",
        "subjectKeyIdentifier = hash", "",
    ])


def identity_steps(host: Host, name: str, password: str) -> list[Step]:
    """Create a self-signed code-signing identity ``name`` in the login keychain (see the
    module docstring). ``password`` protects the temporary .p12 only."""
    check_identity_name(name)
    work = os.path.join(host.state_dir, "signing")
    config, key, cert, p12 = (os.path.join(work, leaf) for leaf in
                              ("openssl.cnf", "key.pem", "cert.pem", "identity.p12"))
    login = keychain(host)
    return [
        Step("remove", work, why="a leftover of an interrupted run"),
        Step("mkdir", work, private=True, why="holds the private key until it is imported"),
        Step("write", config, openssl_config(name), mode=0o600),
        Step("run", argv=("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
                          "-days", "3650", "-config", config, "-keyout", key, "-out", cert)),
        Step("run", argv=("openssl", "pkcs12", "-export", "-inkey", key, "-in", cert,
                          "-name", name, "-out", p12, "-passout", f"pass:{password}",
                          "-keypbe", "PBE-SHA1-3DES", "-certpbe", "PBE-SHA1-3DES",
                          "-macalg", "sha1")),
        Step("run", argv=("security", "import", p12, "-k", login, "-P", password,
                          "-T", "/usr/bin/codesign")),
        Step("run", argv=("security", "add-trusted-cert", "-r", "trustRoot", "-p", "codeSign",
                          "-k", login, cert), why="macOS asks for your password"),
        Step("remove", work),
    ]

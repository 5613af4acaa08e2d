"""CURVE encryption for the policy link: key files, the client allow-list, and socket setup.

Keys are ZeroMQ certificate files (`<name>.key` public, `<name>.key_secret` secret) written by
`python -m deploy.keys` (or `pion-serve +keygen=DIR`). The server admits only clients whose public
key is in its allow-list ("ironhouse"); anyone else gets no service. libzmq refuses such peers
silently, so every refusal is logged here on the server side.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator
from zmq.utils import z85

log = logging.getLogger(__name__)


def generate_keypair(directory: str | os.PathLike, name: str) -> tuple[Path, Path]:
    """Write `<name>.key` (public, share it) and `<name>.key_secret` (keep private, mode 0600)."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    for suffix in (".key", ".key_secret"):
        if (d / f"{name}{suffix}").exists():
            raise FileExistsError(
                f"{d / (name + suffix)} exists; refusing to overwrite a key (delete it first)"
            )
    public, secret = zmq.auth.create_certificates(str(d), name)
    os.chmod(secret, 0o600)
    return Path(public), Path(secret)


def load_keypair(secret_file: str | os.PathLike) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a `.key_secret` file."""
    path = Path(secret_file)
    if not path.is_file():
        raise FileNotFoundError(
            f"CURVE secret key file {path} not found; create it with `python -m deploy.keys`"
        )
    public, secret = zmq.auth.load_certificate(str(path))
    if secret is None:
        raise ValueError(f"{path} holds no secret key; pass the `.key_secret` file, not the public `.key`")
    return public, secret


def _check_key(key: bytes | None, source: str) -> bytes:
    """A CURVE public key must be 40 Z85 characters that decode to 32 bytes."""
    try:
        if key is None or len(key) != 40 or len(z85.decode(key)) != 32:
            raise ValueError
    except Exception:
        raise ValueError(f"{source} holds no valid CURVE public key (40 Z85 characters)") from None
    return bytes(key)


def load_public_key(public_file: str | os.PathLike) -> bytes:
    path = Path(public_file)
    if not path.is_file():
        raise FileNotFoundError(f"CURVE public key file {path} not found")
    try:
        public, _ = zmq.auth.load_certificate(str(path))
    except Exception as e:
        raise ValueError(f"CURVE key file {path} is not a ZeroMQ certificate: {e}") from None
    return _check_key(public, f"CURVE key file {path}")


def _looks_like_path(text: str) -> bool:
    return text.endswith((".key", ".key_secret", ".pub")) or text.startswith(("./", "../", "~/"))


def load_allow_list(entries: Iterable[str | os.PathLike]) -> set[bytes]:
    """Public keys from `.key` files, directories of them, or literal keys (`z85:<40 chars>`, or 40 bare
    Z85 characters that do not look like a file name). Every entry is checked here, at start-up: a missing
    file, a directory without keys, a file without a public key or a malformed literal key is a ValueError
    naming that entry, never a silently admitted key."""
    keys: set[bytes] = set()
    for entry in entries:
        text = str(entry)
        path = Path(text).expanduser()
        where = f"CURVE allow-list entry {text!r}"
        if path.is_dir():
            try:
                found = zmq.auth.load_certificates(str(path))
            except Exception as e:
                raise ValueError(f"{where}: cannot read the key files in it: {e}") from None
            if not found:
                raise ValueError(f"{where}: directory holds no `.key` files (create them with deploy.keys)")
            keys.update(_check_key(k, f"{where} (a key file in it)") for k in found)
        elif path.is_file():
            keys.add(load_public_key(path))
        elif text.startswith("z85:"):
            keys.add(_check_key(text[4:].encode(), where))
        elif len(text) == 40 and not _looks_like_path(text):
            keys.add(_check_key(text.encode(), where))
        else:
            raise ValueError(
                f"{where}: no such file or directory, and not a literal key (`z85:` + 40 Z85 characters); "
                "fix the path or create the key with `python -m deploy.keys`"
            )
    if not keys:
        raise ValueError("CURVE allow-list is empty: no client could ever connect; add client `.key` files")
    return keys


@dataclass
class CurveServerKeys:
    public: bytes
    secret: bytes
    allowed_clients: frozenset[bytes]

    @classmethod
    def from_files(
        cls, secret_file: str | os.PathLike, allow: Iterable[str | os.PathLike]
    ) -> CurveServerKeys:
        public, secret = load_keypair(secret_file)
        return cls(public, secret, frozenset(load_allow_list(allow)))

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True


@dataclass
class CurveClientKeys:
    public: bytes
    secret: bytes
    server_public: bytes

    @classmethod
    def from_files(
        cls, secret_file: str | os.PathLike, server_public_file: str | os.PathLike
    ) -> CurveClientKeys:
        public, secret = load_keypair(secret_file)
        return cls(public, secret, load_public_key(server_public_file))

    def apply(self, sock: zmq.Socket) -> None:
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_serverkey = self.server_public


class _AllowList:
    def __init__(self, allowed: frozenset[bytes]):
        self.allowed = allowed

    def callback(self, domain: str, client_key: bytes) -> bool:
        ok = client_key in self.allowed
        if not ok:
            log.warning(
                "CURVE: refused client key %s (not in the allow-list)", client_key.decode(errors="replace")
            )
        return ok


def start_authenticator(ctx: zmq.Context, keys: CurveServerKeys) -> ThreadAuthenticator:
    """Start the ZAP handler for `ctx`; must run before the server socket binds."""
    if not zmq.has("curve"):
        raise RuntimeError("this libzmq build has no CURVE support; install pyzmq from PyPI")
    auth = ThreadAuthenticator(ctx, log=logging.getLogger("deploy.curve.zap"))
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=_AllowList(keys.allowed_clients))
    return auth

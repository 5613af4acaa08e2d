"""A hand-written ZMTP 3.0 peer (NULL security) on a raw TCP socket, for attacks libzmq clients cannot make:
frames of a multipart message that is never finished (a libzmq client only sends a message once it is whole)."""

from __future__ import annotations

import socket
import struct


def _frame(body: bytes, *, more: bool = False, command: bool = False) -> bytes:
    flags = (0x01 if more else 0) | (0x04 if command else 0)
    if len(body) > 255:
        return bytes([flags | 0x02]) + struct.pack(">Q", len(body)) + body
    return bytes([flags, len(body)]) + body


class RawZmtpDealer:
    """Connects to a ZeroMQ ROUTER at tcp://host:port, handshakes as a DEALER, then sends raw frames."""

    def __init__(self, endpoint: str, timeout_s: float = 5.0):
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout_s)
        greeting = (
            b"\xff" + b"\0" * 8 + b"\x7f" + bytes([3, 0]) + b"NULL".ljust(20, b"\0") + b"\0" + b"\0" * 31
        )
        self.sock.sendall(greeting)
        self._read_exact(64)  # the server's greeting
        prop = b"Socket-Type"
        ready = b"\x05READY" + bytes([len(prop)]) + prop + struct.pack(">I", 6) + b"DEALER"
        self.sock.sendall(_frame(ready, command=True))

    def _read_exact(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise ConnectionError("server closed the connection")
            buf += chunk
        return buf

    def send_frame(self, body: bytes | memoryview, *, more: bool) -> None:
        """Send one message frame; `more=True` promises another frame of the same message."""
        n = len(body)
        flags = (0x01 if more else 0) | (0x02 if n > 255 else 0)
        head = bytes([flags]) + (struct.pack(">Q", n) if n > 255 else bytes([n]))
        self.sock.sendall(head)
        self.sock.sendall(body)

    def close(self) -> None:
        self.sock.close()

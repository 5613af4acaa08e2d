"""Robotiq 2F-85 gripper (the DROID gripper) over Modbus RTU on a USB-RS485 adapter.

Register map (Robotiq 2F-85/2F-140 instruction manual): slave id 0x09; output (command) registers
from 0x03E8 = bytes [action request, reserved, reserved, position request rPR, speed rSP, force rFR];
input (status) registers from 0x07D0 = bytes [gripper status, reserved, fault gFLT, position echo,
position gPO, current]. Position 0 = open, 255 = closed, so DROID's gripper position is gPO / 255.
The Modbus RTU framing (function 0x10 write, 0x04 read, CRC-16/MODBUS) is written out here; any object
with `write(bytes)` and `read(n) -> bytes` (pyserial's `Serial`, or a fake in tests) carries it.
Serial settings default to 115200 8N1 as in the Robotiq manual; verify against your unit.
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from typing import Protocol

log = logging.getLogger(__name__)

SLAVE_ID = 0x09
OUTPUT_REG = 0x03E8
INPUT_REG = 0x07D0
ACT, GTO = 0x01, 0x08  # action request bits: activate, go to requested position


class ModbusError(IOError):
    """A Modbus exchange failed (timeout, bad CRC, exception reply)."""


class SerialPort(Protocol):
    def write(self, data: bytes) -> int | None: ...

    def read(self, n: int) -> bytes: ...


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(frame: bytes) -> bytes:
    return frame + struct.pack("<H", crc16(frame))


def check_crc(frame: bytes) -> bytes:
    if len(frame) < 4 or struct.unpack("<H", frame[-2:])[0] != crc16(frame[:-2]):
        raise ModbusError(f"bad CRC or short frame: {frame.hex()}")
    return frame[:-2]


class ModbusRTU:
    def __init__(self, port: SerialPort, slave: int = SLAVE_ID):
        self.port = port
        self.slave = slave
        self._lock = threading.Lock()

    def _exchange(self, request: bytes, reply_len: int, function: int) -> bytes:
        with self._lock:
            self.port.write(with_crc(request))
            head = self.port.read(2)
            if len(head) == 2 and head[1] == function | 0x80:  # exception reply: slave, fn|0x80, code, crc
                rest = self.port.read(3)
                code = check_crc(head + rest)[2]
                raise ModbusError(
                    f"slave {self.slave} refused function 0x{function:02x}: exception code {code}"
                )
            frame = head + self.port.read(reply_len - 2)
        if len(frame) != reply_len:
            raise ModbusError(
                f"timeout: got {len(frame)} of {reply_len} bytes (check port, baud rate, power)"
            )
        body = check_crc(frame)
        if body[0] != self.slave or body[1] != function:
            raise ModbusError(f"unexpected reply {frame.hex()}")
        return body

    def write_registers(self, address: int, data: bytes) -> None:
        if len(data) % 2:
            data += b"\x00"
        n = len(data) // 2
        req = struct.pack(">BBHHB", self.slave, 0x10, address, n, len(data)) + data
        body = self._exchange(req, 8, 0x10)
        if struct.unpack(">HH", body[2:6]) != (address, n):
            raise ModbusError(f"write echo mismatch: {body.hex()}")

    def read_input_registers(self, address: int, count: int) -> bytes:
        req = struct.pack(">BBHH", self.slave, 0x04, address, count)
        body = self._exchange(req, 5 + 2 * count, 0x04)
        if body[2] != 2 * count:
            raise ModbusError(f"read length mismatch: {body.hex()}")
        return body[3:]


class RobotiqGripper:
    """Implements `deploy.gripper.Gripper`. `command` is one Modbus write (a few ms): it does not wait."""

    def __init__(self, port: SerialPort, speed: int = 255, force: int = 150, activate_timeout_s: float = 5.0):
        self.bus = ModbusRTU(port)
        self.speed, self.force = int(speed), int(force)
        self.activate(activate_timeout_s)

    @classmethod
    def open_serial(cls, device: str, baudrate: int = 115200, **kw) -> RobotiqGripper:
        try:
            import serial
        except ImportError as e:
            raise RuntimeError("the Robotiq driver needs pyserial: pip install 'pyserial>=3.5'") from e
        port = serial.Serial(device, baudrate=baudrate, bytesize=8, parity="N", stopbits=1, timeout=0.1)
        return cls(port, **kw)

    def status(self) -> dict[str, int]:
        raw = self.bus.read_input_registers(INPUT_REG, 3)
        st = raw[0]
        return {
            "activated": st & 1,
            "going": (st >> 3) & 1,
            "state": (st >> 4) & 3,
            "object": (st >> 6) & 3,
            "fault": raw[2],
            "requested": raw[3],
            "position": raw[4],
            "current": raw[5],
        }

    def activate(self, timeout_s: float = 5.0) -> None:
        self.bus.write_registers(OUTPUT_REG, bytes(6))  # clear rACT: reset
        self.bus.write_registers(OUTPUT_REG, bytes([ACT, 0, 0, 0, 0, 0]))
        deadline = time.monotonic() + timeout_s
        while True:
            s = self.status()
            if s["state"] == 3:
                return
            if s["fault"]:
                raise ModbusError(f"Robotiq fault 0x{s['fault']:02x} during activation")
            if time.monotonic() > deadline:
                raise ModbusError(f"Robotiq did not finish activation within {timeout_s} s (status {s})")
            time.sleep(0.05)

    def move(self, position: int) -> None:
        pos = max(0, min(255, int(position)))
        self.bus.write_registers(OUTPUT_REG, bytes([ACT | GTO, 0, 0, pos, self.speed, self.force]))

    def command(self, closed: bool) -> None:
        self.move(255 if closed else 0)

    def position(self) -> float:
        return self.status()["position"] / 255.0

    def close(self) -> None:
        close = getattr(self.bus.port, "close", None)
        if close is not None:
            close()

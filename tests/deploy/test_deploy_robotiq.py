"""Robotiq 2F-85 Modbus RTU driver against a fake serial device that models the register map."""

import struct

import pytest

from deploy.robotiq import INPUT_REG, OUTPUT_REG, ModbusError, RobotiqGripper, check_crc, crc16, with_crc


class FakeRobotiqSerial:
    """Parses Modbus RTU requests (checking CRC), keeps the gripper's registers, answers like the device.
    The finger position moves 60 counts toward the request per status read."""

    def __init__(self, activation_reads: int = 2):
        self.out = bytearray(6)
        self.position = 0
        self.activation_reads = activation_reads
        self.reads_since_act = 0
        self.rx = bytearray()
        self.requests: list[bytes] = []
        self.corrupt_next = False
        self.silent = False
        self.fault = 0

    def write(self, data: bytes):
        body = check_crc(bytes(data))
        self.requests.append(body)
        slave, fn = body[0], body[1]
        assert slave == 0x09
        if self.silent:
            return len(data)
        if fn == 0x10:
            addr, n, nbytes = struct.unpack(">HHB", body[2:7])
            if addr != OUTPUT_REG:
                reply = bytes([slave, 0x90, 0x02])
            else:
                self.out[:nbytes] = body[7 : 7 + nbytes]
                if not self.out[0] & 1:
                    self.reads_since_act = 0
                reply = body[:6]
        elif fn == 0x04:
            addr, count = struct.unpack(">HH", body[2:6])
            assert addr == INPUT_REG
            act = self.out[0] & 1
            if act:
                self.reads_since_act += 1
            state = 3 if act and self.reads_since_act > self.activation_reads else (1 if act else 0)
            if state == 3 and self.out[0] & 0x08:
                target = self.out[3]
                self.position += max(-60, min(60, target - self.position))
            status = act | ((self.out[0] >> 3 & 1) << 3) | (state << 4)
            regs = bytes([status, 0, self.fault, self.out[3], self.position, 0])[: 2 * count]
            reply = bytes([slave, 0x04, 2 * count]) + regs
        else:
            reply = bytes([slave, fn | 0x80, 0x01])
        frame = with_crc(reply)
        if self.corrupt_next:
            frame = frame[:-1] + bytes([frame[-1] ^ 0xFF])
            self.corrupt_next = False
        self.rx += frame
        return len(data)

    def read(self, n: int) -> bytes:
        out, self.rx = bytes(self.rx[:n]), self.rx[n:]
        return out


def test_crc16_matches_the_modbus_check_value():
    assert crc16(b"123456789") == 0x4B37
    assert with_crc(b"\x01\x04\x00\x00\x00\x01")[-2:] == bytes.fromhex("31ca")


def test_activation_then_open_close_drive_position_registers():
    dev = FakeRobotiqSerial()
    g = RobotiqGripper(dev, speed=200, force=100)
    assert g.status()["state"] == 3
    # activation: reset (all zero) then rACT=1 on the output registers at 0x03E8
    first, second = dev.requests[0], dev.requests[1]
    assert first[:7] == struct.pack(">BBHHB", 0x09, 0x10, OUTPUT_REG, 3, 6) and first[7:] == bytes(6)
    assert second[7] == 0x01
    g.command(True)
    assert dev.requests[-1][7:] == bytes([0x09, 0, 0, 255, 200, 100])
    readings = [g.position() for _ in range(6)]
    assert readings == sorted(readings) and readings[-1] == pytest.approx(1.0)
    g.command(False)
    for _ in range(6):
        p = g.position()
    assert p == 0.0


def test_corrupted_reply_silent_device_and_exception_reply_raise_modbus_errors():
    dev = FakeRobotiqSerial()
    g = RobotiqGripper(dev)
    dev.corrupt_next = True
    with pytest.raises(ModbusError, match="CRC"):
        g.status()
    dev.silent = True
    with pytest.raises(ModbusError, match="timeout"):
        g.command(True)
    dev.silent = False
    with pytest.raises(ModbusError, match="exception code 2"):
        g.bus.write_registers(0x1234, b"\x00\x00")


def test_activation_fault_and_timeout_are_reported():
    dev = FakeRobotiqSerial(activation_reads=10**6)
    with pytest.raises(ModbusError, match="activation"):
        RobotiqGripper(dev, activate_timeout_s=0.1)
    dev = FakeRobotiqSerial(activation_reads=10**6)
    dev.fault = 0x05
    with pytest.raises(ModbusError, match="fault 0x05"):
        RobotiqGripper(dev)

"""Eastron SDM120 / SDM630 energy meters over Modbus RTU (input registers, float32).

Register map (0-based protocol addresses, two registers per float):
    0x0000/02/04  phase 1/2/3 line-to-neutral voltage  V
    0x0006/08/0A  phase 1/2/3 current                  A
    0x000C/0E/10  phase 1/2/3 active power             W   (SDM120: 0x000C = total)
    0x0034        total system active power            W   (SDM630)
    0x0048        total import active energy           kWh
The SDM120 has no registers between its single-phase values, so it is read one
value per request; the SDM630's first 18 registers are one contiguous block.
poll() advances one request at a time (see hal.modbus for why).
"""
from hal import base
from hal.modbus import ModbusError, float32

# (first register, register count) per request, in polling order.
_SDM120_BLOCKS = ((0x0048, 2), (0x0000, 2), (0x0006, 2), (0x000C, 2))
_SDM630_BLOCKS = ((0x0048, 2), (0x0000, 18), (0x0034, 2))
# Consecutive failed requests before the readings are declared stale.
_STALE_AFTER = 8


class SdmMeter(base.Meter):
    def __init__(self, bus, unit=1, model="sdm120"):
        if model not in ("sdm120", "sdm630"):
            raise ValueError("meter model: " + str(model))
        self._bus = bus
        self._unit = unit
        self._blocks = _SDM630_BLOCKS if model == "sdm630" else _SDM120_BLOCKS
        self._n = 3 if model == "sdm630" else 1
        self._next = 0
        self._wh = 0
        self._power = 0.0
        self._volts = [0.0] * self._n
        self._amps = [0.0] * self._n
        self._watts = [0.0] * self._n
        self.failures = 0
        self.last_error = None
        self.seen = False  # a valid energy reading arrived at least once

    def poll(self):
        """Collect the pending answer, if any, then send the next request. On a bus shared
        with another meter (ModbusMaster.shared) a meter waits while the other's request is
        out, and leaves the bus free after its own answer, so they take turns."""
        bus = self._bus
        if bus.busy():
            if bus.owner is not self:
                return
            try:
                data = bus.poll()
            except ModbusError as e:
                self.failures += 1
                self.last_error = e.kind if e.kind != "exception" else "exception %d" % e.code
                self._advance()
                return
            if data is None:
                return
            self._store(self._blocks[self._next][0], data)
            self.failures = 0
            self._advance()
            if bus.shared:
                return
        addr, count = self._blocks[self._next]
        bus.owner = self
        bus.start(self._unit, addr, count)

    def _advance(self):
        self._next = (self._next + 1) % len(self._blocks)

    def _store(self, addr, data):
        if addr == 0x0048:
            kwh = float32(data)
            if kwh == kwh and kwh >= 0:  # NaN fails the first test
                wh = int(kwh * 1000 + 0.5)
                # The register is monotone; never let a glitch run it backwards.
                if wh > self._wh:
                    self._wh = wh
                self.seen = True
        elif addr == 0x0000 and len(data) >= 36:
            for i in range(3):
                self._volts[i] = float32(data, 4 * i)
                self._amps[i] = float32(data, 12 + 4 * i)
                self._watts[i] = float32(data, 24 + 4 * i)
        elif addr == 0x0000:
            self._volts[0] = float32(data)
        elif addr == 0x0006:
            self._amps[0] = float32(data)
        elif addr in (0x000C, 0x0034):
            self._power = float32(data)

    def energy_wh(self):
        return self._wh

    def power_w(self):
        return self._power

    def current_a(self):
        # Largest phase current: the one that meets the limit first.
        return max(self._amps)

    def voltage_v(self):
        return self._volts[0]

    def phases(self):
        if self._n == 1:
            return None  # a single-phase meter reports through voltage_v() / current_a()
        return tuple((self._volts[i], self._amps[i], self._watts[i]) for i in range(self._n))

    def stale(self):
        return self.failures >= _STALE_AFTER

    def fault(self):
        return "PowerMeterFailure" if self.stale() else None

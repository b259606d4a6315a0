"""Hardware abstraction: what a board gives the charge point.

The firmware only talks to these objects; `hal.sim` implements them for the host,
`hal.esp32` on `machine`. Everything is polled from the firmware's loop (every
~100-250 ms), so drivers need no callbacks into firmware code.

Board (returned by `hal.sim.make_board(cfg)` / `hal.esp32.make_board(cfg)`):
    board.connectors      list of Connector, index 0 is OCPP connectorId 1
    board.rtc             Rtc
    board.reader          TokenReader
    board.indicator       Indicator
    board.watchdog        Watchdog
    board.reset(hard)     restart the charger (ESP32: machine.reset(); host: restart in-process)
    board.poll()          optional housekeeping called from the loop (may do nothing)

Connector:
    .relay   Relay        .meter  Meter        .pilot  Pilot        .lock  Lock (or None: fixed cable)

Relay:      set(on: bool); is_on() -> bool; welded() -> bool (False without feedback input)
Meter:      energy_wh() -> int (import register, monotone); power_w() -> float;
            current_a() -> float; voltage_v() -> float
            Optional: phases() -> tuple of (voltage_v, current_a) per phase; soc() -> int or None
Pilot:      state() -> "A" (no EV) | "B" (EV connected, not asking) | "C"/"D" (EV asks for energy)
                       | "E" / "F" (error)
            set_current_limit(amps: float or None)  (None: no limit / PWM off)
            fault() -> OCPP ChargePointErrorCode string or None (e.g. "GroundFailure")
Lock:       lock() -> bool; unlock() -> bool (True when the position input confirms)
Rtc:        now() -> int unix seconds (UTC); set(unix_seconds: int)
TokenReader: poll() -> idTag string (max 20 chars) or None; one call returns each swipe once
Indicator:  show(pattern: str)  patterns: "idle" "connecting" "ready" "charging" "error" "fault"
Watchdog:   feed(); enabled: bool
"""

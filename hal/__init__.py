"""Hardware abstraction: what a board gives the charge point.

The contract is `hal/base.py`: one base class per part (Relay, Meter, Pilot, Lock,
TokenReader, Indicator, Rtc, Watchdog, Network, Connector, Board) with safe defaults, and
every driver subclasses one, so the firmware calls methods without asking what a part can
do. Everything is polled from the firmware's loop (every ~100-250 ms): drivers need no
callbacks into firmware code.

    board.connectors   list of Connector (index 0 is OCPP connectorId 1), each with
                       .relay .meter .pilot .lock (None: fixed cable) and fault() -> the
                       OCPP ChargePointErrorCode of the first part in trouble, or None
    board.rtc .reader .indicator .watchdog .network
    board.poll()  board.reset(hard)  board.command(words) (host console; None: not ours)

Boards: `hardware.board` in config.json names `hal/boards/<name>.py` (its pin rules and
make_board(cfg)); `hal/boards/__init__.py` is the registry. Drivers: relay.py, lock.py,
pilot.py, led.py, s0.py, sdm.py (+ modbus.py), rfid_token.py (+ rfid_mfrc522.py,
rfid_pn532.py), wlan.py (the ESP32 station), parts.py (chip-independent parts), esp32.py (the
ESP32 family built from config), sim.py (the host).
Keep this file free of code: it is imported with every hal module.
"""

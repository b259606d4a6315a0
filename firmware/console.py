"""The host console: lines on stdin drive the simulated board and inspect the charger."""
from firmware.compat import MICROPYTHON, asyncio, collect, mem_alloc, mem_free, stdin_reader

# Every command, as `help` prints it; the README's console table lists the same ones
# (tests/unit/test_console.py compares them).
COMMANDS = ("plug N", "unplug N", "pilot N A-F", "swipe TAG", "power N W", "fault N CODE",
            "clear N", "lockfail N", "ap on|off", "tamper open|close",
            "data VENDOR [MESSAGE [DATA]]", "csr", "status", "flash", "mem", "seclog clear",
            "help", "quit")
HELP = "commands: " + " | ".join(COMMANDS)
# ChargePointErrorCode values a fault may take (NoError is `clear N`).
ERROR_CODES = ("ConnectorLockFailure", "EVCommunicationError", "GroundFailure",
               "HighTemperature", "InternalError", "LocalListConflict", "OtherError",
               "OverCurrentFailure", "OverVoltage", "PowerMeterFailure", "PowerSwitchFailure",
               "ReaderFailure", "ResetFailure", "UnderVoltage", "WeakSignal")
_WAIT_TICKS = 2  # a board event is taken in by the charger's next full tick


def describe(cp):
    boot = ("accepted" if cp.accepted else
            "rejected" if cp.boot_status == "Rejected" else "pending")
    parts = ["boot %s, link %s, outbox %d" % (boot,
                                                "up" if cp.rpc.connected else "down",
                                                len(cp.outbox))]
    board = getattr(cp, "board", None)  # None: a charge point without hardware (tests)
    if board is not None:
        parts[0] += ", " + network_state(board.network)
    held = cp.outbox.report()
    if held:  # transaction messages that ran out of attempts (firmware/outbox.py)
        parts[0] += ", " + held
    for c in cp.connectors:
        st = c.status()
        tx = c.tx
        pilot = c.hw.pilot
        parts.append("connector %d: %s%s%s, %d Wh, %.0f W, contactor %s, pilot %s" % (
            c.id, st[0], "" if st[1] == "NoError" else " (" + st[1] + ")",
            "" if tx is None else ", transaction %s for %s" % (tx.tx_id, tx.id_tag),
            c.hw.meter.energy_wh(), c.hw.meter.power_w(),
            "closed" if c.hw.relay.is_on() else "open",
            "F" if pilot.state_f else "off" if not pilot.limit else "%.0f A" % pilot.limit))
    return "\n".join(parts)


def network_state(network):
    """"wifi up 192.0.2.10 -55 dBm", "wifi down"; "network up" on a host (no address)."""
    if not network.up():
        return "wifi down"
    ip, rssi = network.info()
    if ip is None:
        return "network up"
    return "wifi up %s%s" % (ip, "" if rssi is None else " %d dBm" % rssi)


async def run(get_cp, board):
    """Read commands until stdin closes; `get_cp()` is the charger running now."""
    reader = stdin_reader()
    while True:
        raw = await reader.readline()
        if not raw:
            return  # stdin closed: keep charging, just stop listening
        line = raw.decode().strip() if isinstance(raw, bytes) else raw.strip()
        if not line:
            continue
        words = line.split()
        cp = get_cp()
        if words[0] == "quit":
            for c in cp.connectors:
                if c.tx is not None:
                    print("quit: the transaction on connector %d stays open; the contactor"
                          " opens now and the next start stops it (StopTransaction, reason"
                          " PowerLoss, at the last stored meter value)" % c.id)
            cp.shutdown("quit")
            return
        if words[0] == "status":
            print(describe(cp))
        elif words[0] == "flash":
            j = cp.outbox.journal
            print("flash: journal writes=%d bytes=%d pending=%d, mirror writes=%d, log writes=%d"
                  % (j.writes, j.written, len(j), cp.sessions.writes, cp.log.writes))
        elif words[0] == "mem":
            if MICROPYTHON:
                collect()
                print("mem: alloc=%d free=%d" % (mem_alloc(), mem_free()))
            else:
                print("mem: MicroPython only (CPython does not report its heap)")
        elif words[0] == "seclog" and words[1:] == ["clear"]:
            from firmware import secevents  # the technician empties the security log
            secevents.clear(cp)
            print("security log cleared")
        elif words[0] == "help":
            print(HELP)
        elif words[0] == "data":
            if len(words) >= 2:
                _data_transfer(cp, words)
            else:
                print("usage: data VENDOR [MESSAGE [DATA]] - send a DataTransfer to the"
                      " Central System")
        elif words[0] == "csr":  # a new key pair, and SignCertificate for its certificate
            _sign_request(cp)
        elif words[0] == "fault" and len(words) == 3 and words[2] not in ERROR_CODES:
            print("fault: unknown error code %r; one of: %s" % (words[2], ", ".join(ERROR_CODES)))
        else:
            reply = board.command(words)
            print(reply if reply else "unknown command %r; %s" % (line, HELP))
            if reply:
                await _taken_in(cp)


async def _taken_in(cp):
    """Wait until the charger's tick has seen the board event, so that events typed in
    order (`plug 1`, then `swipe X`) are handled in that order (at most 2 s)."""
    start = cp.ticks
    for _ in range(100):
        if cp.ticks - start >= _WAIT_TICKS:
            return
        await asyncio.sleep(0.02)


def _data_transfer(cp, words):
    payload = {"vendorId": words[1]}
    if len(words) > 2:
        payload["messageId"] = words[2]
    if len(words) > 3:
        payload["data"] = " ".join(words[3:])

    async def send():
        try:
            reply = await cp.rpc.call("DataTransfer", payload)
            print("DataTransfer: %s" % reply.get("status"))
        except Exception as e:
            print("DataTransfer failed: %s" % e)
    asyncio.create_task(send())


def _sign_request(cp):
    from firmware import profiles
    from firmware.compat import asyncio

    async def send():
        try:
            await profiles.module("secprofile").sign_request(cp)
        except Exception as e:
            print("SignCertificate failed: %s" % e)
    asyncio.create_task(send())

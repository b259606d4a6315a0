"""The host console: lines on stdin drive the simulated board and inspect the charger."""
from firmware.compat import collect, mem_alloc, mem_free, stdin_reader

HELP = ("commands: plug N | unplug N | pilot N A-F | swipe TAG | power N W | fault N CODE"
        " | clear N | lockfail N | ap on|off | data VENDOR [MESSAGE [DATA]] | csr | status"
        " | flash | mem | seclog clear | help"
        " | quit")


def describe(cp):
    parts = ["boot %s, link %s, outbox %d" % ("accepted" if cp.accepted else "pending",
                                                "up" if cp.rpc.connected else "down",
                                                len(cp.outbox))]
    parts[0] += ", " + network_state(cp.board.network)
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
            cp.shutdown("quit")
            return
        if words[0] == "status":
            print(describe(cp))
        elif words[0] == "flash":
            j = cp.outbox.journal
            print("flash: journal writes=%d bytes=%d pending=%d, mirror writes=%d, log writes=%d"
                  % (j.writes, j.written, len(j), cp.sessions.writes, cp.log.writes))
        elif words[0] == "mem":
            collect()
            print("mem: alloc=%d free=%d" % (mem_alloc(), mem_free()))
        elif words[0] == "seclog" and words[1:] == ["clear"]:
            from firmware import secevents  # the technician empties the security log
            secevents.clear(cp)
            print("security log cleared")
        elif words[0] == "help":
            print(HELP)
        elif words[0] == "data" and len(words) >= 2:
            _data_transfer(cp, words)
        elif words[0] == "csr":  # a new key pair, and SignCertificate for its certificate
            _sign_request(cp)
        else:
            reply = board.command(words)
            print(reply if reply else "unknown command %r; %s" % (line, HELP))


def _data_transfer(cp, words):
    from firmware.compat import asyncio
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

# Runs firmware.ws under MicroPython against a test server and prints one line per step.
# usage (cwd = repository root): micropython tests/unit/ws_mp_check.py URL [CA_FILE]
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the package lives in cwd

import asyncio

from firmware import ws


async def main(url, ca_file):
    try:
        conn = await ws.connect(url, auth=("CP_1", "secret"), ca_file=ca_file,
                                connect_timeout_ms=3000, handshake_timeout_ms=3000)
    except ws.WsError as e:
        print("CONNECT_ERROR", e)
        return
    print("CONNECTED")
    await conn.send("héllo")
    print("ECHO", await conn.recv())
    await conn.send("y" * 300)  # 16-bit length form both ways
    print("ECHO_LEN", len(await conn.recv()))
    await conn.send("ping-me")  # the server pings and only answers once our pong arrived
    print("AFTER_PING", await conn.recv())
    print("IDLE_OK", conn.idle_ms() < 1000)
    await conn.close(1000, "bye")
    print("CLOSED", conn.closed)


asyncio.run(main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))

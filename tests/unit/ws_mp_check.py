# Runs firmware.ws under MicroPython and prints one line per step (cwd = repository root):
#   micropython tests/unit/ws_mp_check.py URL [CA_FILE]   client against a test server
#   micropython tests/unit/ws_mp_check.py frames           frame handling on in-memory streams
#   micropython tests/unit/ws_mp_check.py deadline URL     receive until a 500 ms deadline fails
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the package lives in cwd

import asyncio

from firmware import ws


def unmask(data, mask):
    return bytes(b ^ mask[i & 3] for i, b in enumerate(data))


async def client(url, ca_file):
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
    await conn.send(iter(["y" * 1000, "\u00e9" * 500]))  # 2000 bytes: a fragmented message
    print("ECHO_PIECES", len(await conn.recv()))
    await conn.send("ping-me")  # the server pings and only answers once our pong arrived
    print("AFTER_PING", await conn.recv())
    print("IDLE_OK", conn.idle_ms() < 1000)
    receiver = asyncio.create_task(conn.recv())  # close() while another task is receiving
    await asyncio.sleep_ms(50)
    await conn.close(1000, "bye")
    try:
        await receiver
    except ws.WsClosed as e:
        print("RECEIVER_CLOSED", e.code)
    print("CLOSED", conn.closed)
    conn = await ws.connect(url, ca_file=ca_file)
    await conn.send("close-me")  # the server closes with 4001
    try:
        await conn.recv()
    except ws.WsClosed as e:
        print("SERVER_CLOSED", e.code, e.reason, conn.closed)


class Reader:
    def __init__(self, data):
        self.data, self.requests = data, []

    async def readexactly(self, n):
        self.requests.append(n)
        if n > 16 or len(self.data) < n:  # the oversize payload must never be asked for
            raise EOFError
        chunk, self.data = self.data[:n], self.data[n:]
        return chunk


class Writer:
    def __init__(self):
        self.out = b""

    def write(self, data):
        self.out += data

    async def drain(self):
        pass

    def close(self):
        pass

    async def wait_closed(self):
        pass


def srv(op, payload=b"", fin=True):
    return ws.encode_frame(op, payload, fin, mask=b"")


async def recv(data, max_message=8192):
    reader, writer = Reader(data), Writer()
    conn = ws.Connection(reader, writer, max_message)
    try:
        got = (await conn.recv()).encode()  # bytes repr looks the same on both interpreters
    except ws.WsClosed as e:
        got = e.code
    # the first byte of each client frame is FIN|opcode; report opcode and unmasked payload
    sent = writer.out and (writer.out[0] & 0x0F, unmask(writer.out[6:], writer.out[2:6]))
    return got, sent, reader.requests


async def frames():
    print("RFC", ws.encode_frame(1, b"Hello", mask=bytes([0x37, 0xFA, 0x21, 0x3D])).hex())
    print("LEN64", ws.encode_frame(1, bytes(65536), mask=b"\0\0\0\0")[:10].hex())
    print("FRAG", await recv(srv(1, b"ab", False) + srv(9, b"hi") + srv(0, "é".encode())))
    big = bytes([0x81, 127]) + b"\0\0\0\x01\0\0\0\0"  # declares 4 GiB
    print("BIG", await recv(big))
    print("UTF8", (await recv(srv(1, b"\xff\xfe")))[0])
    print("BINARY", (await recv(srv(2, b"\x00")))[0])
    print("MASKED", (await recv(ws.encode_frame(1, b"x", mask=b"abcd")))[0])
    print("CLOSE", await recv(srv(8, b"\x0f\xa1bye")))


async def deadline(url):
    """What the test server of test_ws_client's deadline tests makes of a receiving client."""
    import time
    conn = await ws.connect(url, wait_ms=500)
    start = time.ticks_ms()
    try:
        while True:
            print("GOT", await conn.recv())
    except ws.WsClosed as e:
        print("CLOSED", e.code, e.reason, conn.closed)
    print("AFTER_MS", time.ticks_diff(time.ticks_ms(), start))


if sys.argv[1] == "frames":
    asyncio.run(frames())
elif sys.argv[1] == "deadline":
    asyncio.run(deadline(sys.argv[2]))
else:
    asyncio.run(client(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None))

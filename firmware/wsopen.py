"""The websocket opening handshake (RFC 6455 4): the HTTP upgrade over a firmware.net channel.

Loaded by firmware.ws.connect() for one attempt and dropped after, with the network layer,
so its code costs no RAM while the charger is connected. Failures are net.NetError, which
ws.connect() reports as WsError.
"""
import binascii
import hashlib

from firmware import compat, net
from firmware.compat import asyncio
from firmware.net import NetError

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _b64(data):
    return binascii.b2a_base64(data).strip().decode()


def accept_key(key):
    """The Sec-WebSocket-Accept value the server must send for our key (RFC 6455 4.2.2)."""
    return _b64(hashlib.sha1((key + _GUID).encode()).digest())


def check_response(status, reason, headers, key, protocol):
    """Raise NetError unless this is a valid 101 answer agreeing to `protocol`."""
    if status != 101:
        raise NetError("HTTP {} {}".format(status, reason).rstrip())
    if headers.get("upgrade", "").lower() != "websocket":
        raise NetError("server did not upgrade to websocket")
    if "upgrade" not in [t.strip() for t in headers.get("connection", "").lower().split(",")]:
        raise NetError("server did not send Connection: Upgrade")
    if headers.get("sec-websocket-accept") != accept_key(key):
        raise NetError("bad Sec-WebSocket-Accept")
    got = headers.get("sec-websocket-protocol")
    if got != protocol:
        raise NetError("server did not agree to subprotocol {} (got {})".format(
            protocol, got or "none"))
    if "sec-websocket-extensions" in headers:  # we offer none, so any is a violation
        raise NetError("server chose an extension that was not offered")


async def handshake(channel, url, protocol, auth):
    """Send the upgrade request for the net.Url `url` and check the server's answer."""
    key = _b64(compat.urandom(16))
    lines = ["GET " + url.target + " HTTP/1.1", "Host: " + url.host_header(),
             "Upgrade: websocket", "Connection: Upgrade", "Sec-WebSocket-Key: " + key,
             "Sec-WebSocket-Version: 13", "Sec-WebSocket-Protocol: " + protocol]
    if auth:
        lines.append("Authorization: Basic " + _b64("{}:{}".format(auth[0], auth[1]).encode()))
    await channel.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, reason, headers = await net.read_head(channel)
    check_response(status, reason, headers, key, protocol)


async def upgrade(url, protocol="ocpp1.6", auth=None, ca_file=None, verify=True,
                  connect_timeout_ms=10000, handshake_timeout_ms=10000, cert_file=None,
                  key_file=None, dns=None, dns_log=None):
    """Connect to the ws:// or wss:// `url` and upgrade to a websocket agreeing on `protocol`
    -> (reader, writer), the stream at its first frame; NetError. cert_file/key_file: our
    client certificate for wss:// (SecurityProfile 3). dns, dns_log: the last good addresses
    and where a lookup that failed is reported (net.connect)."""
    url = net.Url(url, ("ws", "wss"))
    if url.user is not None:
        raise NetError("credentials belong in auth=, not in the URL")
    if auth and ":" in str(auth[0]):  # Basic auth cannot carry ':' in the user id (RFC 7617)
        raise NetError("auth id must not contain ':'")
    channel = await net.connect(url.host, url.port, connect_timeout_ms, url.secure, ca_file,
                                verify, cert_file, key_file, dns, dns_log)
    channel.timeout_ms = 0  # the handshake as a whole has a deadline
    channel.exact = True    # the frames after the head are the websocket's
    done = False
    try:
        await asyncio.wait_for(handshake(channel, url, protocol, auth),
                               handshake_timeout_ms / 1000)
        done = True
        return channel.detach()
    except asyncio.TimeoutError:
        raise NetError("handshake timeout after {} ms".format(handshake_timeout_ms))
    finally:
        if not done:
            await channel.close()

"""FTP client for firmware.transfer: login, binary type, passive RETR and STOR (RFC 959,
RFC 2428), over firmware.net channels.

The data connection always goes to the host of the control connection; the address
in a PASV reply is ignored. That defeats FTP bounce tricks and works with servers
behind NAT that announce their private address.
"""
from firmware.compat import const
from firmware.net import NetError, connect

_MAX_REPLY_LINES = const(50)
_QUIT_WAIT_MS = const(2000)


async def reply(channel):
    """One reply, multi-line ones included -> (code, its first line)."""
    for _ in range(_MAX_REPLY_LINES):  # 1xx "wait" replies before the real one
        line = await channel.readline()
        code = line[:3]
        if len(code) < 3 or not code.isdigit():
            raise NetError("ftp: not an FTP reply: " + line[:60])
        if line[3:4] == "-":  # ends at a line starting with the same code and a space
            for _ in range(_MAX_REPLY_LINES):
                more = await channel.readline()
                if more[:3] == code and more[3:4] == " ":
                    break
            else:
                raise NetError("ftp: reply over {} lines".format(_MAX_REPLY_LINES))
        if code != "120":  # "service ready in nnn minutes": the greeting follows
            return int(code), line
    raise NetError("ftp: server never got ready")


def _refused(line):
    return NetError("ftp: " + line[:120])


async def command(channel, text, ok):
    """Send one command; its reply -> (code, line), NetError unless code is in ok."""
    await channel.write(text.encode() + b"\r\n")
    code, line = await reply(channel)
    if code not in ok:
        raise _refused(line)
    return code, line


def pasv_port(line):
    """Data port from a 227 reply "... (h1,h2,h3,h4,p1,p2)" (the parentheses are optional)."""
    cleaned = "".join(c if c.isdigit() or c == "," else " " for c in line[4:])
    for word in cleaned.split():
        nums = word.split(",")
        if len(nums) == 6 and all(n.isdigit() and int(n) < 256 for n in nums):
            port = int(nums[4]) * 256 + int(nums[5])
            if port:
                return port
    raise NetError("ftp: bad PASV reply: " + line[:60])


def epsv_port(line):
    """Data port from a 229 reply "... (|||port|)" (RFC 2428 3; any delimiter)."""
    i = line.find("(")
    fields = line[i + 1:].split(line[i + 1:i + 2]) if 0 <= i < len(line) - 1 else []
    if len(fields) >= 5 and fields[3].isdigit() and 0 < int(fields[3]) < 65536:
        return int(fields[3])
    raise NetError("ftp: bad EPSV reply: " + line[:60])


async def _login(url, timeout_ms):
    channel = await connect(url.host, url.port, timeout_ms)
    try:
        code, line = await reply(channel)
        if code != 220:
            raise _refused(line)
        user = url.user or "anonymous"
        password = url.password if url.user else (url.password or "anonymous@")
        code, _ = await command(channel, "USER " + user, (230, 331))
        if code == 331:
            await command(channel, "PASS " + (password or ""), (202, 230))
        await command(channel, "TYPE I", (200,))
        return channel
    except BaseException:
        await channel.close()
        raise


async def _open_data(channel, url):
    # PASV first (IPv4, the widest support), EPSV when the server refuses it (e.g. IPv6).
    await channel.write(b"PASV\r\n")
    code, line = await reply(channel)
    if code == 227:
        port = pasv_port(line)
    else:
        port = epsv_port((await command(channel, "EPSV", (229,)))[1])
    return await connect(url.host, port, channel.timeout_ms)


async def _quit(channel):
    channel.timeout_ms = min(channel.timeout_ms, _QUIT_WAIT_MS)
    try:
        await command(channel, "QUIT", (221,))
    except NetError:
        pass  # the file is already complete; a server that hangs up first is fine


def _remote_path(url):
    if not url.path:
        raise NetError("ftp: no file name in URL")
    return url.path


async def retrieve(url, sink, timeout_ms):
    """RETR the net.Url's path into sink (a transfer.Sink)."""
    path = _remote_path(url)
    channel = await _login(url, timeout_ms)
    try:
        # SIZE lets an oversized file fail before anything is written to flash.
        code, line = await command(channel, "SIZE " + path, range(100, 600))
        size = line[4:].strip()
        if code == 213 and size.isdigit():
            sink.expect(int(size))
        data = await _open_data(channel, url)
        try:
            await command(channel, "RETR " + path, (125, 150))
            while True:
                chunk = await data.read()
                if not chunk:
                    break
                sink.write(chunk)
        finally:
            await data.close()
        await _completed(channel)
    finally:
        await channel.close()


async def _completed(channel):
    # Only this reply tells a complete file from a connection that broke off.
    code, line = await reply(channel)
    if code not in (226, 250):
        raise _refused(line)
    await _quit(channel)


async def store(url, source, timeout_ms):
    """STOR a transfer.Source as the net.Url's path."""
    path = _remote_path(url)
    channel = await _login(url, timeout_ms)
    try:
        data = await _open_data(channel, url)
        try:
            await command(channel, "STOR " + path, (125, 150))
            await data.write_from(source)
        finally:
            await data.close()  # end of file for the server
        await _completed(channel)
    finally:
        await channel.close()

"""Runs first on the ESP32: join the WiFi network named in config.json.

Keys: wifi.ssid, wifi.password, wifi.hostname, wifi.timeout_s and
wifi.static.{ip, netmask, gateway, dns} (see hal/hwspec.py). Connection
attempts back off exponentially and the whole wait is bounded, so a missing
access point delays the start but never blocks it; the firmware keeps trying
to reach the CSMS afterwards. On the unix port and on CPython there is no
`network` module and this returns at once.
"""

from firmware.compat import ticks_ms, ticks_diff, sleep_ms

_ATTEMPT_MS = 10000   # one association + DHCP
_FIRST_BACKOFF_MS = 1000
_MAX_BACKOFF_MS = 8000
_POLL_MS = 100


def load_config(path="config.json"):
    from firmware import store  # strict JSON, as the charger reads the same file
    try:
        with open(path):
            pass
    except OSError as e:
        print("boot: cannot read", path, "-", e)
        return {}
    cfg = store.read_json(path, {})  # a broken file is named on the console
    return cfg if isinstance(cfg, dict) else {}


def backoff_ms(attempt):
    """Pause after failed attempt number `attempt` (0-based): 1 s, 2 s, 4 s, 8 s, 8 s..."""
    ms = _FIRST_BACKOFF_MS << attempt if attempt < 8 else _MAX_BACKOFF_MS
    return ms if ms < _MAX_BACKOFF_MS else _MAX_BACKOFF_MS


def _configure(sta, wifi):
    sta.active(True)
    static = wifi.get("static") or {}
    ip = static.get("ip") or ""
    if ip:
        gateway = static.get("gateway") or ""
        if not gateway:
            print("boot: wifi.static.ip needs wifi.static.gateway; using DHCP")
            return
        sta.ifconfig((ip, static.get("netmask") or "255.255.255.0", gateway,
                      static.get("dns") or gateway))


def join(sta, wifi, clock=ticks_ms, sleep=sleep_ms):
    """Connect the station interface `sta`; it is returned when up, else None."""
    _configure(sta, wifi)
    if sta.isconnected():
        return sta
    total_ms = int(wifi.get("timeout_s") or 60) * 1000
    start = clock()
    attempt = 0
    while True:
        print("boot: joining WiFi", repr(wifi["ssid"]), "attempt", attempt + 1)
        try:
            sta.connect(wifi["ssid"], wifi.get("password") or "")
        except OSError as e:
            print("boot: connect failed:", e)
        t0 = clock()
        while ticks_diff(clock(), t0) < _ATTEMPT_MS and ticks_diff(clock(), start) < total_ms:
            if sta.isconnected():
                print("boot: WiFi up", sta.ifconfig())
                return sta
            sleep(_POLL_MS)
        print("boot: no connection yet, status", sta.status())
        try:
            sta.disconnect()
        except OSError:
            pass
        pause = backoff_ms(attempt)
        left = total_ms - ticks_diff(clock(), start)
        if left <= pause:
            print("boot: giving up on WiFi after", total_ms // 1000, "s; starting without it")
            return None
        sleep(pause)
        attempt += 1


def main():
    try:
        import network
    except ImportError:
        return None  # not on a board with WiFi: nothing to do
    wifi = load_config().get("wifi") or {}
    if not wifi.get("ssid"):
        print("boot: WiFi not configured - set wifi.ssid (and wifi.password) in config.json")
        return None
    if wifi.get("hostname"):
        # Set before the interface comes up so the DHCP request carries it.
        network.hostname(wifi["hostname"])
    return join(network.WLAN(network.STA_IF), wifi)


if __name__ == "__main__":
    main()

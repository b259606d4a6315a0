"""The ESP32 station interface (`network.WLAN`) as the board's Network part.

start() begins one join attempt and returns at once: `connect()` of MicroPython's esp32
port associates and runs DHCP in the background, and after a lost access point its driver
keeps reconnecting by itself until disconnect(). The link supervisor (firmware/link.py)
calls start() again with its backoff, in case the driver gave up; boot.py calls it once,
early, so the association runs while the application loads. An attempt under way
(STAT_CONNECTING) is left alone rather than restarted.

Keys: wifi.ssid, wifi.password, wifi.hostname and wifi.static.{ip, netmask, gateway, dns}
(hal/hwspec.py). `network` is imported on first use (passed in by the tests), so this module
imports on CPython.
"""
from hal import base


class Wlan(base.Network):
    def __init__(self, wifi, network=None):
        self._wifi = wifi
        self._net = network
        self._sta = None

    def _station(self):
        if self._sta is None:
            net = self._net
            if net is None:
                import network as net
                self._net = net
            wifi = self._wifi
            if wifi.get("hostname"):
                # Set before the interface comes up so the DHCP request carries it.
                net.hostname(wifi["hostname"])
            sta = net.WLAN(net.STA_IF)
            sta.active(True)
            static = wifi.get("static") or {}
            ip, gateway = static.get("ip") or "", static.get("gateway") or ""
            if ip and gateway:
                sta.ifconfig((ip, static.get("netmask") or "255.255.255.0", gateway,
                              static.get("dns") or gateway))
            elif ip:
                print("wifi: wifi.static.ip needs wifi.static.gateway; using DHCP")
            self._sta = sta
        return self._sta

    def up(self):
        return bool(self._station().isconnected())

    def start(self):
        """Begin a join attempt unless the station is up or one is under way."""
        sta = self._station()
        if sta.isconnected():
            return
        if sta.status() == getattr(self._net, "STAT_CONNECTING", 1001):
            return
        try:
            sta.disconnect()  # a driver that gave up is restarted cleanly
        except OSError:
            pass
        try:
            sta.connect(self._wifi["ssid"], self._wifi.get("password") or "")
        except OSError as e:
            print("wifi: connect failed:", e)

    def info(self):
        sta = self._station()
        if not sta.isconnected():
            return (None, None)
        try:
            rssi = int(sta.status("rssi"))
        except (OSError, ValueError, TypeError):
            rssi = None
        return (sta.ifconfig()[0], rssi)

"""Runs first on the ESP32: start joining the WiFi network named in config.json.

Only the first join attempt starts here, and boot.py does not wait for it: the association
runs in the background while the application loads, and the charger's link supervisor
(firmware/link.py) waits for the network, joins again with its backoff when the access point
is missing or lost, and reports the link state (README "WiFi"). So a router that boots
slower than the charger, or goes away later, never needs a power cycle.

Keys: wifi.ssid, wifi.password, wifi.hostname and wifi.static.{ip, netmask, gateway, dns}
(hal/hwspec.py, hal/wlan.py). On the unix port and on CPython there is no `network` module
and this returns at once.
"""


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


def start(wifi, network):
    """Begin joining `wifi` (the config section) with the `network` module -> the Wlan part,
    or None when WiFi is not configured."""
    if not wifi.get("ssid"):
        print("boot: WiFi not configured - set wifi.ssid (and wifi.password) in config.json")
        return None
    from hal.wlan import Wlan
    wlan = Wlan(wifi, network)
    print("boot: joining WiFi", repr(wifi["ssid"]), "(the charger waits for it)")
    wlan.start()
    return wlan


def main():
    try:
        import network
    except ImportError:
        return None  # not on a board with WiFi: nothing to do
    wifi = load_config().get("wifi")
    return start(wifi if isinstance(wifi, dict) else {}, network)


if __name__ == "__main__":
    main()

"""The network part (hal/wlan.py, the sim access point), boot.py's first join, the link
supervisor's join and loss detection (firmware/link.py), and the DNS fallback (firmware/net.py)."""
import asyncio
import json
import time

import pytest

import boot
from firmware import link as linkmod, net
from hal import base
from hal.sim import SimNetwork
from hal.wlan import Wlan
from tests.fakes import FakeNetworkModule, Log


# -- boot.py and the ESP32 station ------------------------------------------------------------

def test_boot_only_starts_the_first_join_and_returns_at_once():
    nm = FakeNetworkModule(ap=False)
    t = time.monotonic()
    wlan = boot.start({"ssid": "site", "password": "pw", "hostname": "cp7"}, nm)
    assert time.monotonic() - t < 0.5
    assert isinstance(wlan, Wlan) and nm.name == "cp7"
    assert nm.calls[0] == ("active", True) and ("connect", "site", "pw") in nm.calls
    assert not wlan.up()
    nm.ap = True                                  # the router finished booting
    assert wlan.up() and wlan.info() == ("10.0.0.2", -61)


def test_boot_without_ssid_or_network_module_does_nothing():
    nm = FakeNetworkModule()
    assert boot.start({}, nm) is None and nm.calls == []
    t = time.monotonic()
    assert boot.main() is None                    # CPython has no `network` module
    assert time.monotonic() - t < 1.0


def test_wlan_static_address_and_dhcp_fallback():
    nm = FakeNetworkModule()
    Wlan({"ssid": "s", "static": {"ip": "10.0.0.9", "gateway": "10.0.0.1"}}, nm).start()
    assert ("ifconfig", ("10.0.0.9", "255.255.255.0", "10.0.0.1", "10.0.0.1")) in nm.calls
    nm = FakeNetworkModule()
    Wlan({"ssid": "s", "static": {"ip": "10.0.0.9"}}, nm).start()   # no gateway: DHCP
    assert not any(c[0] == "ifconfig" for c in nm.calls)


def test_wlan_start_leaves_an_attempt_under_way_and_restarts_a_failed_one():
    nm = FakeNetworkModule(ap=False)
    wlan = Wlan({"ssid": "s"}, nm)
    wlan.start()
    n = len(nm.calls)
    nm.STAT_NO_AP_FOUND = nm.STAT_CONNECTING       # the driver says: still associating
    wlan.start()
    assert len(nm.calls) == n
    nm.STAT_NO_AP_FOUND = 201                     # it gave up: disconnect and connect again
    wlan.start()
    assert nm.calls[n:] == [("disconnect",), ("connect", "s", "")]
    assert wlan.info() == (None, None)


def test_sim_access_point_drops_and_the_station_rejoins_by_itself():
    sim = SimNetwork()
    assert not sim.up()                           # nothing joins before start()
    sim.start()
    time.sleep(0.6)
    assert sim.up() and sim.info() == ("192.0.2.10", -55)
    sim.set_ap(False)
    assert not sim.up() and sim.info() == (None, None)
    sim.set_ap(True)
    assert not sim.up()                           # associating ...
    time.sleep(0.6)
    assert sim.up()


# -- the link supervisor ----------------------------------------------------------------------

class _Conn:
    dead = None

    def idle_ms(self):
        return 0

    async def close(self, code, reason=""):
        pass


def _link(network, log, connects):
    cfg = {"csms": {"reconnect_min": 0.2, "reconnect_max": 0.4, "connect_timeout": 5},
           "_dir": ".", "_data": "."}

    async def connect():
        connects.append(network.up())
        return _Conn()
    return linkmod.Link(cfg, {"WebSocketPingInterval": 0}, log, base.Indicator(), connect,
                        network)


def test_link_waits_for_the_network_and_ends_a_link_whose_network_is_lost():
    async def scenario():
        sim = SimNetwork()
        sim.set_ap(False)
        log, connects, sessions = Log(), [], []

        async def session(conn):
            sessions.append(conn)
            await asyncio.sleep(30)
        link = _link(sim, log, connects)
        task = asyncio.create_task(link.run(session))
        await asyncio.sleep(1.0)
        assert connects == [] and "joining the network" in log.text()
        sim.set_ap(True)
        await asyncio.sleep(1.0)                  # 0.5 s association, looked at every 0.25 s
        assert connects == [True] and len(sessions) == 1
        assert "wifi: up: ip 192.0.2.10, rssi -55 dBm" in log.text()
        sim.set_ap(False)
        await asyncio.sleep(1.5)                  # the keeper looks every second
        assert "link down: network lost" in log.text()
        assert link.conn is None and connects == [True]
        sim.set_ap(True)
        await asyncio.sleep(1.5)
        assert connects == [True, True] and len(sessions) == 2
        task.cancel()
    asyncio.run(scenario())


def test_a_failed_join_backs_off_and_the_wait_ends_when_the_network_returns(monkeypatch):
    monkeypatch.setattr(linkmod, "_JOIN_MS", 600)     # CPython reads the module's value
    async def scenario():
        sim = SimNetwork()
        sim.set_ap(False)
        log, connects = Log(), []
        cfg = {"csms": {"reconnect_min": 30.0, "reconnect_max": 60.0, "connect_timeout": 5},
               "_dir": ".", "_data": "."}

        async def connect():
            connects.append(sim.up())
            return _Conn()

        async def session(conn):
            await asyncio.sleep(30)
        link = linkmod.Link(cfg, {"WebSocketPingInterval": 0}, log, base.Indicator(), connect,
                            sim)
        task = asyncio.create_task(link.run(session))
        await asyncio.sleep(1.5)
        assert "not joined after" in log.text()
        assert "reconnecting in" in log.text() and connects == []   # a 15-30 s backoff
        sim.set_ap(True)
        await asyncio.sleep(1.2)                   # 0.5 s association, looked at every 0.25 s
        assert connects == [True], log.text()      # long before the backoff would end
        task.cancel()
    asyncio.run(scenario())


# -- DNS ----------------------------------------------------------------------------------------

def test_resolve_keeps_the_last_good_address_and_uses_it_when_a_lookup_fails():
    dns, log = {}, Log()
    assert net.resolve("localhost", 80, dns, log) == "127.0.0.1"
    assert dns == {"localhost": "127.0.0.1"}
    assert net.resolve("127.0.0.1", 80, dns, log) == "127.0.0.1" and len(dns) == 1
    dns["csms.invalid"] = "192.0.2.7"
    assert net.resolve("csms.invalid", 80, dns, log) == "192.0.2.7"
    assert "DNS lookup of csms.invalid failed" in log.levels("warn")[0]
    with pytest.raises(net.NetError, match="cannot resolve nothing.invalid"):
        net.resolve("nothing.invalid", 80, dns, log)


def test_resolve_on_micropython():
    from tests.mp import run_mp
    proc = run_mp("from firmware import net\nd = {}\nprint(net.resolve('localhost', 80, d),"
                  " d)\nd['x.invalid'] = '1.2.3.4'\nprint(net.resolve('x.invalid', 80, d))")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:2] == ["127.0.0.1 {'localhost': '127.0.0.1'}", "1.2.3.4"]


def test_link_stores_a_new_address_once(tmp_path):
    """The flash copy is written when an address changes, not at every connect."""
    from firmware import config
    from firmware.keys import Keys
    from tools.driver import write_config
    path = write_config(tmp_path, "ws://localhost:9/ocpp")      # nothing listens on port 9
    cfg = config.load(str(path))
    keys = Keys(cfg["ocpp"], str(tmp_path / "keys.json"), 1, Log())
    link = linkmod.Link(cfg, keys, Log(), base.Indicator())
    dns = tmp_path / "data" / "dns.json"
    with pytest.raises(Exception):
        asyncio.run(link._websocket())
    assert json.loads(dns.read_text()) == {"localhost": "127.0.0.1"}
    dns.write_text('{"localhost": "127.0.0.1"} ')               # marked: rewritten or not?
    with pytest.raises(Exception):
        asyncio.run(link._websocket())
    assert dns.read_text() == '{"localhost": "127.0.0.1"} '       # same address: no write

"""firmware.auth: firmware.authstore is loaded only while it is used; what it knows survives."""
import asyncio
import json
import sys

import pytest

import firmware
from firmware.auth import Auth
from tests.mp import run_mp

from auth_mp_check import FakeCp, full_list


def loaded():
    return "firmware.authstore" in sys.modules or hasattr(firmware, "authstore")


@pytest.fixture
def cp(tmp_path):
    return FakeCp(str(tmp_path))


def test_store_is_dropped_after_every_use_and_the_list_survives(cp):
    auth = Auth(cp)
    assert not loaded()
    assert auth.send_local_list(full_list(3, "LISTED")) == "Accepted"
    assert not loaded()
    assert auth.list_version() == 3

    # Known from the list: accepted without asking the Central System.
    assert asyncio.run(auth.authorize("LISTED")) == ("Accepted", None)
    assert not loaded() and cp.rpc.calls == []
    # Unknown: asked, and the answer goes to the cache.
    assert asyncio.run(auth.authorize("OTHER")) == ("Accepted", "GROUP")
    assert not loaded() and cp.rpc.calls == [("Authorize", {"idTag": "OTHER"})]
    auth.remember("THIRD", {"status": "Blocked"})
    assert not loaded()

    # What was sent or remembered earlier is still found.
    cp.connected = False
    assert asyncio.run(auth.authorize("listed")) == ("Accepted", None)
    assert asyncio.run(auth.authorize("OTHER")) == ("Accepted", "GROUP")
    assert auth.local("THIRD") == ("Blocked", None)
    assert auth.list_version() == 3
    auth.clear_cache()
    assert not loaded()
    assert auth.local("OTHER") is None
    assert auth.local("LISTED") == ("Accepted", None)
    assert auth.list_version() == 3
    assert not loaded()


def test_a_new_start_finds_list_and_cache(cp):
    auth = Auth(cp)
    assert auth.send_local_list(full_list(7, "A", "B")) == "Accepted"
    auth.remember("C", {"status": "Accepted"})
    again = Auth(cp)
    assert again.list_version() == 7
    assert again.local("B") == ("Accepted", None)
    assert again.local("C") == ("Accepted", None)
    assert not loaded()


def test_the_list_file_is_checked_once_at_boot(cp, tmp_path):
    auth = Auth(cp)
    assert auth.send_local_list(full_list(2, "A")) == "Accepted"
    path = tmp_path / "locallist.dat"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # the CRC of the whole file: only reading all of it would notice
    path.write_bytes(bytes(data))
    assert auth.local("A") == ("Accepted", None)
    assert cp.log.lines == []
    assert Auth(cp).list_version() == 0  # a new start checks it and starts empty
    assert "unusable" in cp.log.lines[-1][2]


def test_nothing_stored_nothing_loaded(cp, monkeypatch):
    auth = Auth(cp)

    def refuse():
        raise AssertionError("firmware.authstore loaded with nothing to look up")

    monkeypatch.setattr(auth, "_open", refuse)
    assert auth.local("ANY") is None
    assert auth.list_version() == 0
    cp.keys["LocalAuthListEnabled"] = False
    assert auth.send_local_list(full_list(1, "A")) == "NotSupported"
    assert auth.list_version() == -1
    cp.keys["AuthorizationCacheEnabled"] = False
    auth.remember("A", {"status": "Accepted"})


def test_micropython_gives_the_store_ram_back(tmp_path):
    proc = run_mp("tests/unit/auth_mp_check.py", tmp_path, heap="512K")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["res"] == ["Accepted", ["Accepted", None], ["Accepted", "GROUP"]]
    assert out["version"] == 5 and out["third"] == ["Blocked", None]
    assert not out["loaded"]
    # firmware.authstore alone takes ~11 KB; what stays is a few state tuples and log lines.
    assert out["grown"] < 1024, out

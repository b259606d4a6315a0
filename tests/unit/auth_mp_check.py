# A fake charge point for firmware.auth, and when run (cwd = repository root):
#   micropython tests/unit/auth_mp_check.py FOLDER
# Auth under MicroPython: one JSON line with what it answered and how much heap stayed.
import sys

sys.path.insert(0, "")  # MicroPython puts the script's folder first; the package lives in cwd

from tests.fakes import Log  # noqa: E402


class FakeRpc:
    def __init__(self):
        self.calls = []

    async def call(self, action, payload):
        self.calls.append((action, payload))
        return {"idTagInfo": {"status": "Accepted", "parentIdTag": "GROUP"}}


class FakeCp:
    def __init__(self, data):
        self.cfg = {"_data": data}
        self.keys = {"LocalAuthListEnabled": True, "LocalAuthListMaxLength": 100,
                     "SendLocalListMaxLength": 100, "AuthorizationCacheEnabled": True,
                     "LocalPreAuthorize": True, "LocalAuthorizeOffline": True,
                     "AllowOfflineTxForUnknownId": False}
        self.log = Log()
        self.rpc = FakeRpc()
        self.connected = True

    def now(self):
        return 1700000000

    def online(self):
        return self.connected


def full_list(version, *tags):
    """A SendLocalList.req (Full) accepting `tags`."""
    entries = [{"idTag": t, "idTagInfo": {"status": "Accepted"}} for t in tags]
    return {"updateType": "Full", "listVersion": version, "localAuthorizationList": entries}


def main(folder):
    import asyncio
    import gc
    import json
    import firmware
    from firmware import clock, rpc, store  # noqa: F401 - what firmware.auth needs anyway

    asyncio.run(FakeRpc().call("warm-up", None))  # the loop's own first-run allocations
    cp = FakeCp(folder)
    gc.collect()
    start = gc.mem_alloc()
    from firmware.auth import Auth
    auth = Auth(cp)
    auth.send_local_list(full_list(4, "LISTED"))
    asyncio.run(auth.authorize("OTHER"))
    gc.collect()
    base = gc.mem_alloc()
    res = [auth.send_local_list(full_list(5, "LISTED", "MORE")),
           asyncio.run(auth.authorize("LISTED")), asyncio.run(auth.authorize("NEW"))]
    auth.remember("THIRD", {"status": "Blocked"})
    gc.collect()
    grown = gc.mem_alloc() - base
    loaded = "firmware.authstore" in sys.modules or hasattr(firmware, "authstore")
    print(json.dumps({"grown": grown, "kept": base - start, "res": res, "loaded": loaded,
                      "version": auth.list_version(), "third": auth.local("THIRD")}))


if __name__ == "__main__":
    main(sys.argv[1])

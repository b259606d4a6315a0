"""Who may charge: the Central System, the Local Authorization List and the Authorization Cache
(OCPP 1.6 §3.4), combined per LocalPreAuthorize / LocalAuthorizeOffline /
AllowOfflineTxForUnknownId.

firmware.authstore is loaded only while a card is checked or remembered or the list or cache
is changed, and dropped again after: between uses only the stores' state() tuples stay here.
"""
from firmware import clock, store
from firmware.compat import const, unload
from firmware.rpc import CallFailed, NotConnected

_CACHE_ENTRIES = const(64)
_STORE = "firmware.authstore"


class Auth:
    def __init__(self, cp):
        self.cp = cp
        data = cp.cfg["_data"]
        self._list_path = store.join(data, "locallist.dat")
        self._cache_path = store.join(data, "authcache.dat")
        self._list = self._cache = None  # no state yet: the first open checks both files
        self._close(*self._open())

    def _open(self):
        """(LocalList, AuthCache) with firmware.authstore loaded; hand them to _close() after."""
        from firmware.authstore import AuthCache, LocalList
        cp = self.cp
        return (LocalList(self._list_path, cp.keys["LocalAuthListMaxLength"], cp.log, self._list),
                AuthCache(self._cache_path, _CACHE_ENTRIES, cp.log, self._cache))

    def _close(self, local_list, cache):
        self._list = local_list.state()
        self._cache = cache.state()
        unload(_STORE)

    def _valid(self, info):
        """idTagInfo -> status, with a passed expiryDate turned into Expired."""
        status = info.get("status", "Invalid")
        exp = info.get("expiryDate")
        if status == "Accepted" and exp:
            try:
                if clock.parse_iso(exp) <= self.cp.now():
                    return "Expired"
            except ValueError:
                return "Invalid"
        return status

    def local(self, tag):
        """(status, parent) known on the charger without asking, or None."""
        if not (self._list[0] or self._cache[0]):
            return None  # both empty (state() starts with the count): nothing to load
        keys = self.cp.keys
        local_list, cache = self._open()
        try:
            info = local_list.lookup(tag) if keys["LocalAuthListEnabled"] else None
            if info is None and keys["AuthorizationCacheEnabled"]:
                info = cache.get(tag)
        finally:
            self._close(local_list, cache)
        if info is None:
            return None
        return self._valid(info), info.get("parentIdTag")

    def remember(self, tag, info):
        """Keep what the Central System said about `tag` (Authorize and Start/StopTransaction
        replies)."""
        keys = self.cp.keys
        if not keys["AuthorizationCacheEnabled"]:
            return
        local_list, cache = self._open()
        try:
            # The list is authoritative for its own entries.
            if not (keys["LocalAuthListEnabled"] and local_list.lookup(tag) is not None):
                cache.put(tag, info)
        finally:
            self._close(local_list, cache)

    async def authorize(self, tag):
        """(status, parentIdTag) for a presented `tag`."""
        cp = self.cp
        known = self.local(tag)
        online = cp.online()
        accepted = known is not None and known[0] == "Accepted"
        if accepted and (cp.keys["LocalPreAuthorize"] or not online):
            if online or cp.keys["LocalAuthorizeOffline"]:
                cp.log.info("auth", "%s accepted locally" % tag)
                return known
        if online:
            try:
                reply = await cp.rpc.call("Authorize", {"idTag": tag})
                info = reply["idTagInfo"]
                self.remember(tag, info)
                return self._valid(info), info.get("parentIdTag")
            except (CallFailed, NotConnected) as e:
                cp.log.warn("auth", "Authorize failed: %s" % e)
        if known is not None:
            return known if cp.keys["LocalAuthorizeOffline"] else ("Invalid", None)
        if cp.keys["AllowOfflineTxForUnknownId"]:
            return "Accepted", None
        return "Invalid", None

    def clear_cache(self):
        local_list, cache = self._open()
        try:
            cache.clear()
        finally:
            self._close(local_list, cache)

    def send_local_list(self, req):
        keys = self.cp.keys
        if not keys["LocalAuthListEnabled"]:
            return "NotSupported"
        entries = req.get("localAuthorizationList") or []
        if len(entries) > keys["SendLocalListMaxLength"]:
            return "Failed"
        local_list, cache = self._open()
        try:
            return local_list.update(req["updateType"], req["listVersion"], entries)
        finally:
            self._close(local_list, cache)

    def list_version(self):
        if not self.cp.keys["LocalAuthListEnabled"]:
            return -1
        count, version = self._list
        # An empty list reports 0 (§5.10), as LocalList.version does.
        return version if count else 0

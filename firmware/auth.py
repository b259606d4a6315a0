"""Who may charge: the Central System, the Local Authorization List and the Authorization Cache
(OCPP 1.6 §3.4), combined per LocalPreAuthorize / LocalAuthorizeOffline / AllowOfflineTxForUnknownId."""
from firmware import clock, store
from firmware.authstore import AuthCache, LocalList
from firmware.compat import const
from firmware.rpc import CallFailed, NotConnected

_CACHE_ENTRIES = const(64)


class Auth:
    def __init__(self, cp):
        self.cp = cp
        data = cp.cfg["_data"]
        self.local_list = LocalList(store.join(data, "locallist.dat"), cp.keys["LocalAuthListMaxLength"], cp.log)
        self.cache = AuthCache(store.join(data, "authcache.dat"), _CACHE_ENTRIES, cp.log)

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
        keys = self.cp.keys
        info = self.local_list.lookup(tag) if keys["LocalAuthListEnabled"] else None
        if info is None and keys["AuthorizationCacheEnabled"]:
            info = self.cache.get(tag)
        if info is None:
            return None
        return self._valid(info), info.get("parentIdTag")

    def remember(self, tag, info):
        """Keep what the Central System said about `tag` (Authorize, Start/StopTransaction replies)."""
        if not self.cp.keys["AuthorizationCacheEnabled"]:
            return
        if self.cp.keys["LocalAuthListEnabled"] and self.local_list.lookup(tag) is not None:
            return  # the list is authoritative for its own entries
        self.cache.put(tag, info)

    async def authorize(self, tag):
        """(status, parentIdTag) for a presented `tag`."""
        cp = self.cp
        known = self.local(tag)
        online = cp.online()
        if known is not None and known[0] == "Accepted" and (cp.keys["LocalPreAuthorize"] or not online):
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
        self.cache.clear()

    def send_local_list(self, req):
        keys = self.cp.keys
        if not keys["LocalAuthListEnabled"]:
            return "NotSupported"
        entries = req.get("localAuthorizationList") or []
        if len(entries) > keys["SendLocalListMaxLength"]:
            return "Failed"
        return self.local_list.update(req["updateType"], req["listVersion"], entries)

    def list_version(self):
        return self.local_list.version if self.cp.keys["LocalAuthListEnabled"] else -1

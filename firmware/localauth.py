"""Local Auth List Management profile: the Central System's list of known cards (kept by Auth)."""


def SendLocalList(cp, req):
    return {"status": cp.auth.send_local_list(req)}


def GetLocalListVersion(cp, req):
    return {"listVersion": cp.auth.list_version()}

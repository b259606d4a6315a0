"""firmware.rpc: a CALLRESULT is taken in before the frame behind it is handled."""
import asyncio
import json

from firmware.log import Log
from firmware.rpc import CallFailed, NotConnected, Rpc


class FakeWs:
    """Frames queued by the test come out of recv(); sent texts are kept."""

    def __init__(self):
        self.sent = []
        self.inbox = asyncio.Queue()

    async def send(self, text):
        self.sent.append(json.loads(text))

    async def recv(self):
        return await self.inbox.get()


def serving(handlers=None):
    """(Rpc, FakeWs, reader task): an attached Rpc reading the fake link; `handlers` maps
    actions to handler functions."""
    rpc = Rpc(Log("error"), 30000, (handlers or {}).get)
    ws = FakeWs()
    rpc.attach(ws)
    return rpc, ws, asyncio.create_task(rpc.serve(ws))


def test_reply_is_taken_in_before_a_call_right_behind_it():
    order = []

    async def scenario():
        def remote_stop(req):
            order.append(("stop", req["transactionId"]))
            return {"status": "Accepted"}

        rpc, ws, reader = serving({"RemoteStopTransaction": remote_stop})
        start = {"connectorId": 1, "idTag": "T", "meterStart": 0,
                 "timestamp": "2026-01-01T00:00:00Z"}
        call = asyncio.create_task(rpc.call(
            "StartTransaction", start,
            on_result=lambda r: order.append(("started", r["transactionId"]))))
        await asyncio.sleep(0.01)
        msg_id = ws.sent[0][1]
        # Both frames are read back to back, before the calling task gets to run again.
        conf = {"transactionId": 7, "idTagInfo": {"status": "Accepted"}}
        ws.inbox.put_nowait(json.dumps([3, msg_id, conf]))
        ws.inbox.put_nowait(json.dumps([2, "cs-1", "RemoteStopTransaction", {"transactionId": 7}]))
        reply = await call
        await asyncio.sleep(0.01)
        reader.cancel()
        return reply

    reply = asyncio.run(scenario())
    assert reply["transactionId"] == 7
    assert order == [("started", 7), ("stop", 7)]


def test_an_error_in_on_result_is_raised_by_call():
    async def scenario():
        rpc, ws, reader = serving()

        def boom(_reply):
            raise OSError("flash failed")
        call = asyncio.create_task(rpc.call("Heartbeat", {}, on_result=boom))
        await asyncio.sleep(0.01)
        now = {"currentTime": "2026-01-01T00:00:00Z"}
        ws.inbox.put_nowait(json.dumps([3, ws.sent[0][1], now]))
        try:
            await call
            raised = None
        except OSError as e:
            raised = e
        reader.cancel()
        return raised

    assert str(asyncio.run(scenario())) == "flash failed"


def test_on_result_is_not_run_for_a_callerror():
    ran = []

    async def scenario():
        rpc, ws, reader = serving()
        call = asyncio.create_task(rpc.call("Heartbeat", {}, on_result=ran.append))
        await asyncio.sleep(0.01)
        ws.inbox.put_nowait(json.dumps([4, ws.sent[0][1], "InternalError", "", {}]))
        try:
            await call
            failed = None
        except CallFailed as e:
            failed = e.code
        reader.cancel()
        return failed

    assert asyncio.run(scenario()) == "InternalError"
    assert ran == []


def test_a_lost_link_raises_not_connected_not_call_failed():
    async def scenario():
        rpc, ws, reader = serving()
        call = asyncio.create_task(rpc.call("Heartbeat", {}))
        await asyncio.sleep(0.01)
        rpc.detach()
        try:
            await call
            raised = None
        except Exception as e:
            raised = e
        reader.cancel()
        return raised

    assert isinstance(asyncio.run(scenario()), NotConnected)

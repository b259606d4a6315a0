"""firmware.rpc: a CALLRESULT is taken in before the frame behind it is handled; a call
unanswered on a silent link ends the link; strings from the Central System are cut."""
import asyncio
import json

from firmware.ws import WsClosed
from firmware.compat import ticks_diff, ticks_ms
from firmware.rpc import CallFailed, NotConnected, Rpc
from tests.fakes import Log


class FakeWs:
    """Frames queued by the test come out of recv(); sent texts are kept."""

    def __init__(self):
        self.sent = []
        self.inbox = asyncio.Queue()
        self.dead = None
        self.failure = None      # an exception send() raises
        self._last = ticks_ms()

    async def send(self, text):
        if self.failure:
            raise self.failure
        # A str or its pieces (ocppj.pieces), as ws.Connection.send takes.
        self.sent.append(json.loads(text if isinstance(text, str) else "".join(text)))

    async def recv(self):
        text = await self.inbox.get()
        self._last = ticks_ms()
        return text

    def idle_ms(self):
        return ticks_diff(ticks_ms(), self._last)


def serving(handlers=None):
    """(Rpc, FakeWs, reader task): an attached Rpc reading the fake link; `handlers` maps
    actions to handler functions."""
    rpc = Rpc(Log(), 30000, (handlers or {}).get)
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


def _call_failure(rpc, ws, during=None):
    """Run a Heartbeat call with a 200 ms timeout, feeding `during` (a frame) 50 ms in;
    -> the exception it raised."""
    async def scenario():
        reader = asyncio.create_task(rpc.serve(ws))
        call = asyncio.create_task(rpc.call("Heartbeat", {}, timeout_ms=200))
        await asyncio.sleep(0.05)
        if during:
            ws.inbox.put_nowait(during)
        try:
            await call
            raised = None
        except Exception as e:
            raised = e
        reader.cancel()
        return raised
    return asyncio.run(scenario())


def test_a_call_unanswered_on_a_silent_link_marks_the_link_dead():
    rpc, ws = Rpc(Log(), 30000, {}.get), FakeWs()
    rpc.attach(ws)
    raised = _call_failure(rpc, ws)
    assert isinstance(raised, NotConnected)
    assert str(raised) == ws.dead == ("no reply to Heartbeat within 200 ms and no other "
                                      "frame: the link is dead")


def test_a_call_unanswered_while_other_frames_came_is_just_a_timeout():
    rpc, ws = Rpc(Log(), 30000, {}.get), FakeWs()
    rpc.attach(ws)
    raised = _call_failure(rpc, ws, json.dumps([3, "late-1", {}]))  # the CSMS is alive
    assert isinstance(raised, CallFailed) and raised.code == "Timeout"
    assert ws.dead is None


def test_a_reply_taken_in_as_the_wait_runs_out_is_the_answer(monkeypatch):
    async def late_wait_for(aw, timeout):
        # The timer fires in the same turn the reader takes the reply in: both are done.
        aw.close()
        await asyncio.sleep(0.05)
        raise asyncio.TimeoutError

    async def scenario():
        rpc, ws, reader = serving()
        delivered = []
        monkeypatch.setattr(asyncio, "wait_for", late_wait_for)
        call = asyncio.create_task(rpc.call("StopTransaction", {"transactionId": 7},
                                            on_result=delivered.append))
        await asyncio.sleep(0.01)
        await ws.inbox.put(json.dumps([3, ws.sent[0][1], {}]))
        result = await call
        reader.cancel()
        return result, delivered

    result, delivered = asyncio.run(scenario())
    assert result == {} and delivered == [{}]  # delivered, and no "failed: Timeout"


def test_a_failed_send_is_not_connected():
    rpc, ws = Rpc(Log(), 30000, {}.get), FakeWs()
    rpc.attach(ws)
    ws.failure = WsClosed(1006, "send not done in 10000 ms")
    raised = _call_failure(rpc, ws)
    assert isinstance(raised, NotConnected) and "send not done" in str(raised)


def _handle_all(rpc, frames):
    async def scenario():
        for text in frames:
            await rpc.handle(text)
    asyncio.run(scenario())


def test_a_6_kb_action_name_is_cut_in_the_callerror_and_the_log():
    log = Log()
    rpc, ws = Rpc(log, 30000, {}.get), FakeWs()
    rpc.attach(ws)
    _handle_all(rpc, [json.dumps([2, "cs-1", "X" * 6000, {}])])
    (kind, msg_id, code, description, _details), = ws.sent
    assert (kind, msg_id, code) == (4, "cs-1", "NotImplemented")
    assert description == "unknown action " + "X" * 40 + "..."
    assert max(len(m) for _lvl, _tag, m in log.lines) < 100


def test_callerror_texts_from_the_csms_are_cut():
    rpc, ws = Rpc(Log(), 30000, {}.get), FakeWs()
    rpc.attach(ws)

    async def scenario():
        reader = asyncio.create_task(rpc.serve(ws))
        call = asyncio.create_task(rpc.call("Heartbeat", {}))
        await asyncio.sleep(0.01)
        ws.inbox.put_nowait(json.dumps([4, ws.sent[0][1], "GenericError", "E" * 6000, {}]))
        try:
            await call
        except CallFailed as e:
            return e
        finally:
            reader.cancel()

    failed = asyncio.run(scenario())
    assert failed.code == "GenericError" and len(failed.description) == 123


def test_a_flood_of_unmatched_replies_costs_a_few_warnings():
    log = Log()
    rpc, ws = Rpc(log, 30000, {}.get), FakeWs()
    rpc.attach(ws)
    _handle_all(rpc, [json.dumps([3, "nobody-%d" % i, {}]) for i in range(6000)])
    lines = [(lvl, m) for lvl, _tag, m in log.lines if "unmatched" in m]
    assert len(lines) == 13  # the 1st, 2nd, 4th ... 4096th
    assert lines[0] == ("warn", "unmatched reply nobody-0 ignored (1 so far)")
    assert lines[-1] == ("warn", "unmatched reply nobody-4095 ignored (4096 so far)")
    assert ws.sent == []


def _replay_frames():
    ids = ["cs-%d" % i for i in range(9)]
    return ([json.dumps([2, "cs-0", "Reset", {"type": "Soft"}])] * 2       # a replay
            + [json.dumps([2, i, "Reset", {"type": "Soft"}]) for i in ids[1:]]
            + [json.dumps([2, "cs-0", "Reset", {"type": "Soft"}])])       # 8 CALLs later


def test_a_call_reusing_a_recent_unique_id_is_refused_as_a_replay():
    """The second CALL with id cs-0 is not executed: CALLERROR SecurityError and the event
    AttemptedReplayAttacks. Only the last 8 ids are kept: cs-0 after 8 others runs again."""
    ran, events = [], []
    rpc, ws = Rpc(Log(), 30000, {"Reset": lambda req: ran.append(req) or {
        "status": "Accepted"}}.get), FakeWs()
    rpc.on_event = lambda kind, info: events.append((kind, info))
    rpc.attach(ws)
    _handle_all(rpc, _replay_frames())
    assert len(ran) == 10
    assert ws.sent[0] == [3, "cs-0", {"status": "Accepted"}]
    kind, msg_id, code, description, _ = ws.sent[1]
    assert (kind, msg_id, code) == (4, "cs-0", "SecurityError")
    assert "used by an earlier CALL" in description
    assert [m[0] for m in ws.sent[2:]] == [3] * 9
    assert events == [("AttemptedReplayAttacks", "Reset reuses the uniqueId cs-0")]


def test_replays_are_refused_on_micropython_too():
    from tests.mp import run_mp
    code = """
import json
from firmware.compat import asyncio
from firmware.rpc import Rpc
class Log:
    level = 1
    def __getattr__(self, name):
        return lambda *a: None
class Ws:
    def __init__(self):
        self.sent = []
    async def send(self, text):
        self.sent.append(json.loads(text if isinstance(text, str) else "".join(text)))
ran, events = [], []
rpc = Rpc(Log(), 30000, {"Reset": lambda req: ran.append(1) or {"status": "Accepted"}}.get)
rpc.on_event = lambda kind, info: events.append(kind)
ws = Ws()
rpc.attach(ws)
async def main():
    for text in json.loads(%r):
        await rpc.handle(text)
asyncio.run(main())
print(len(ran), [m[0] for m in ws.sent], ws.sent[1][2], events)
""" % json.dumps(_replay_frames())
    proc = run_mp(code)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split("\n")[0] == (
        "10 [3, 4, 3, 3, 3, 3, 3, 3, 3, 3, 3] SecurityError ['AttemptedReplayAttacks']")

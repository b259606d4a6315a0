"""The file-job helper (firmware/job.py) and the two feature modules built on it:
UpdateFirmware (firmware/updater.py) and GetDiagnostics (firmware/diagnostics.py), against a
fake charge point; the transfers themselves are replaced (tests/unit/test_transfer.py has them)."""
import asyncio
import os
import sys

import pytest

import firmware
from firmware import diagnostics, job, transfer, updater, updates
from tests.fakes import ChargePoint


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 5))


@pytest.fixture
def cp(tmp_path, monkeypatch):
    # No waiting between attempts here (the floor is the policy test's), and pause() looks
    # for a replacement every 10 ms instead of every second.
    monkeypatch.setattr(job, "_MIN_INTERVAL_S", 0)
    monkeypatch.setattr(job, "_STEP_S", 0.01)
    # transfer.release() unloads the transfer module after a transfer, and the next import makes
    # a fresh copy without the fakes these tests put on it (also when an earlier test in this
    # process released it): the tests' copy is put back and kept loaded.
    monkeypatch.setitem(sys.modules, "firmware.transfer", transfer)
    monkeypatch.setattr(firmware, "transfer", transfer, raising=False)
    monkeypatch.setattr(transfer, "release", lambda: None)
    return ChargePoint(str(tmp_path))


@pytest.mark.parametrize("req, expected", [
    ({}, (1, 30)),
    ({"retries": 3, "retryInterval": 5}, (3, 5)),
    ({"retries": 5, "retryInterval": 3600}, (5, 3600)),
    ({"retries": 0, "retryInterval": 0}, (1, 5)),
    ({"retries": -2, "retryInterval": -1}, (1, 30)),
    # The flood of finding 6: at most 5 attempts, at least 5 s apart.
    ({"retries": 2147483647, "retryInterval": 0}, (5, 5)),
    ({"retries": 6, "retryInterval": 4}, (5, 5)),
])
def test_policy_follows_the_request_within_caps(req, expected):
    assert job.policy(req) == expected


def test_status_is_sent_kept_for_trigger_and_delivered(cp):
    j = job.Job(cp, "diag", "DiagnosticsStatusNotification", "diagnostics_status",
                ("Uploading",))
    j.status("Uploading")
    assert cp.diagnostics_status == "Uploading" and cp.kicks == 1
    assert j.delivered is None
    j.status("Uploaded")  # over: TriggerMessage reports Idle
    assert cp.diagnostics_status == "Idle"
    assert [e.action for e in cp.outbox.deliver()] == ["DiagnosticsStatusNotification"] * 2
    assert j.delivered == "Uploaded"
    assert cp.log.levels("info") == ["diagnostics status Uploading", "diagnostics status Uploaded"]


def test_attempts_retry_as_the_request_says(cp):
    j = job.Job(cp, "update", "FirmwareStatusNotification", "firmware_status", ())
    calls, works = [], [False, False, True]

    async def attempt():
        calls.append(1)
        if not works[len(calls) - 1]:
            raise OSError("no route")

    assert run(j.attempts({"retries": 3, "retryInterval": 0}, "download", attempt))
    assert len(calls) == 3
    assert cp.log.levels("warn") == ["download 1 of 3 failed: no route",
                                     "download 2 of 3 failed: no route"]
    calls[:], works[:] = [], [False, False, True]
    assert not run(j.attempts({"retries": 2, "retryInterval": 0}, "upload", attempt))
    assert len(calls) == 2
    assert cp.log.levels("warn")[-2:] == ["upload 1 of 2 failed: no route",
                                          "upload 2 of 2 failed: no route"]


def test_attempts_are_capped_whatever_retries_says(cp):
    j = job.Job(cp, "update", "FirmwareStatusNotification", "firmware_status", ())
    calls = []

    async def attempt():
        calls.append(1)
        raise OSError("unreachable")

    assert not run(j.attempts({"retries": 2147483647, "retryInterval": 0}, "download",
                              attempt))
    assert len(calls) == 5
    assert cp.log.levels("warn")[-1] == "download 5 of 5 failed: unreachable"


def test_start_is_busy_until_the_work_ends_and_reports_a_crash(cp):
    j = job.Job(cp, "update", "FirmwareStatusNotification", "firmware_status", ())

    async def work():
        assert j.busy
        raise ValueError("boom")

    reply, after = j.start({"x": 1}, work, "InstallationFailed", "firmware update")
    assert reply == {"x": 1} and j.busy
    run(after())
    assert not j.busy
    assert cp.outbox.sent() == [{"status": "InstallationFailed"}]
    assert cp.log.levels("error") == ["firmware update failed: ValueError('boom')"]


# ---- UpdateFirmware -----------------------------------------------------------------------

def test_update_firmware_download_failed_then_a_second_request(cp, monkeypatch):
    got = []

    async def download(url, dest, **kw):
        got.append(url)
        raise OSError("refused")
    monkeypatch.setattr(transfer, "download", download)
    req = {"location": "http://h/fw.tar", "retrieveDate": "2024-05-01T11:00:00Z",
           "retries": 2, "retryInterval": 0}
    reply, after = updater.UpdateFirmware(cp, req)
    assert reply == {} and cp.loaded("updater").busy
    assert updater.UpdateFirmware(cp, req) == {}  # one update at a time
    assert "UpdateFirmware ignored: an update is already under way" in cp.log.levels("warn")
    run(after())
    assert got == ["http://h/fw.tar"] * 2
    assert cp.outbox.sent("FirmwareStatusNotification") == [
        {"status": "Downloading"}, {"status": "DownloadFailed"}]
    assert cp.firmware_status == "Idle" and not cp.loaded("updater").busy
    assert isinstance(updater.UpdateFirmware(cp, req), tuple)  # free again


async def _replace_while(cp, first, second):
    """UpdateFirmware `first`, then `second` once the first is paused -> the second's
    reply; both runs are awaited."""
    _, after = updater.UpdateFirmware(cp, first)
    task = asyncio.create_task(after())
    u = cp.loaded("updater")
    while not u.waiting:
        await asyncio.sleep(0.005)
    reply = updater.UpdateFirmware(cp, second)
    assert isinstance(reply, tuple) and u.busy and not u.waiting
    await reply[1]()
    await task
    return reply[0]


def test_update_firmware_replaces_one_waiting_for_its_retrieve_date(cp, monkeypatch):
    got = []

    async def download(url, dest, **kw):
        got.append(url)
        raise OSError("refused")
    monkeypatch.setattr(transfer, "download", download)
    later = {"location": "http://h/old.tar", "retrieveDate": "2024-05-02T12:00:00Z"}
    now = {"location": "http://h/new.tar", "retrieveDate": "2024-05-01T12:00:00Z"}
    assert run(_replace_while(cp, later, now)) == {}
    assert got == ["http://h/new.tar"]  # the old one never downloads
    assert cp.outbox.sent("FirmwareStatusNotification") == [
        {"status": "Downloading"}, {"status": "DownloadFailed"}]
    assert "UpdateFirmware replaces the update waiting to download" in cp.log.levels("warn")
    assert not cp.loaded("updater").busy


def test_update_firmware_replaces_one_between_attempts(cp, monkeypatch):
    got = []

    async def download(url, dest, **kw):
        got.append(url)
        if url.endswith("old.tar"):
            raise OSError("unreachable")
        with open(dest, "wb") as f:
            f.write(b"not a tar")
        return 9, "0" * 64
    monkeypatch.setattr(transfer, "download", download)
    flood = {"location": "http://h/old.tar", "retrieveDate": "2024-05-01T12:00:00Z",
             "retries": 2147483647, "retryInterval": 1}
    good = {"location": "http://h/new.tar", "retrieveDate": "2024-05-01T12:00:00Z"}
    run(_replace_while(cp, flood, good))
    assert got == ["http://h/old.tar", "http://h/new.tar"]
    # The replaced download is reported failed before the new one begins.
    assert [p["status"] for p in cp.outbox.sent()] == [
        "Downloading", "DownloadFailed", "Downloading", "Downloaded", "Installing",
        "InstallationFailed"]
    assert not cp.loaded("updater").busy


def test_update_firmware_is_ignored_while_downloading(cp, monkeypatch):
    async def scenario():
        release = asyncio.Event()

        async def download(url, dest, **kw):
            await release.wait()
            raise OSError("gone")
        monkeypatch.setattr(transfer, "download", download)
        req = {"location": "http://h/fw.tar", "retrieveDate": "2024-05-01T12:00:00Z"}
        _, after = updater.UpdateFirmware(cp, req)
        task = asyncio.create_task(after())
        await asyncio.sleep(0.02)
        assert updater.UpdateFirmware(cp, req) == {}
        release.set()
        await task
    run(scenario())
    assert "UpdateFirmware ignored: an update is already under way" in cp.log.levels("warn")
    assert [p["status"] for p in cp.outbox.sent()] == ["Downloading", "DownloadFailed"]


def test_update_firmware_installation_failed(cp, monkeypatch):
    async def download(url, dest, **kw):
        with open(dest, "wb") as f:
            f.write(b"not a tar" * 100)
        return 900, "0" * 64
    monkeypatch.setattr(transfer, "download", download)
    _, after = updater.UpdateFirmware(cp, {"location": "ftp://h/fw.tar",
                                           "retrieveDate": "2024-05-01T12:00:00Z"})
    run(after())
    assert [p["status"] for p in cp.outbox.sent()] == [
        "Downloading", "Downloaded", "Installing", "InstallationFailed"]
    assert not os.path.exists(os.path.join(cp.cfg["_data"], "update.tar"))
    assert updates.read_active(cp.cfg["_data"]) == {}


def test_confirm_keeps_the_download_of_a_running_update(cp, tmp_path):
    tar = tmp_path / "update.tar"
    tar.write_bytes(b"half")
    cp.feature("updater").busy = True
    updates.confirm(cp)
    assert tar.exists()
    cp.loaded("updater").busy = False
    updates.confirm(cp)  # a download a reset cut short
    assert not tar.exists()


# ---- GetDiagnostics -----------------------------------------------------------------------

class RingLog:
    """The fake log plus lines(since, until) of firmware/log.py over (unix time, line) pairs."""

    def __init__(self, log, ring):
        self._log = log
        self._ring = ring

    def __getattr__(self, name):
        return getattr(self._log, name)

    def lines(self, since, until):
        return ((t, text) for t, text in self._ring
                if (since is None or t >= since) and (until is None or t <= until))


def with_log(cp, ring):
    cp.log = RingLog(cp.log, ring)
    return cp


def test_get_diagnostics_uploads_the_window(cp, monkeypatch):
    with_log(cp, [(1714564000, "11:46:40 I boot: BootNotification Accepted"),
                  (1714564700, "11:58:20 I cp: connector 1 Preparing")])
    sent = []

    async def upload(url, path, **kw):
        with open(path) as f:
            sent.append((url, kw.get("filename"), f.read()))
        return 100, "0" * 64
    monkeypatch.setattr(transfer, "upload", upload)
    reply, after = diagnostics.GetDiagnostics(cp, {"location": "ftp://h/up/",
                                                   "startTime": "2024-05-01T11:50:00Z"})
    assert reply == {"fileName": "CP_1-20240501T120000Z.log"}
    assert diagnostics.GetDiagnostics(cp, {"location": "ftp://h/up/"}) == {}  # busy
    run(after())
    url, name, text = sent[0]
    # The location is a directory: the file name is in the URL (transfer.in_folder).
    assert (url, name) == ("ftp://h/up/CP_1-20240501T120000Z.log", None)
    assert text.splitlines() == [
        "# V M CP_1, firmware 0.1.0, log 2024-05-01T11:50:00Z to now",
        "2024-05-01T11:58:20Z I cp: connector 1 Preparing"]
    assert [p["status"] for p in cp.outbox.sent()] == ["Uploading", "Uploaded"]
    assert cp.diagnostics_status == "Idle" and not cp.loaded("diagnostics").busy
    assert os.listdir(cp.cfg["_data"]) == []  # the copy is gone


def test_get_diagnostics_without_lines_or_with_a_failing_server(cp, monkeypatch):
    with_log(cp, [(1714564000, "11:46:40 I boot: BootNotification Accepted")])
    assert diagnostics.GetDiagnostics(cp, {"location": "ftp://h/",
                                           "startTime": "2024-05-01T11:50:00Z"}) == {}
    assert cp.outbox.sent() == []

    async def upload(url, path, **kw):
        raise OSError("403")
    monkeypatch.setattr(transfer, "upload", upload)
    _, after = diagnostics.GetDiagnostics(cp, {"location": "http://h/", "retries": 2,
                                               "retryInterval": 0})
    run(after())
    assert [p["status"] for p in cp.outbox.sent()] == ["Uploading", "UploadFailed"]
    assert cp.log.levels("warn") == ["upload 1 of 2 failed: 403", "upload 2 of 2 failed: 403"]

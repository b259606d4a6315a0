"""Loader: `micropython main.py [CONFIG]`, `python3 main.py [CONFIG]`, or on the board.

Runs the factory application (firmware/ + hal/ next to this file) or an update installed
in `<data_dir>/app/<slot>/` and named by `<data_dir>/app/active.json`:

    {"slot": "a", "previous": "factory", "version": "9.9.9", "previous_version": null,
     "tries": 0, "confirmed": false, "report": "Installed"}

A new slot is unconfirmed until its first BootNotification is Accepted (the application
then sets "confirmed"). Each start of an unconfirmed slot counts a try; past MAX_TRIES
the loader goes back to "previous" with report "InstallationFailed" ("failed" names the
slot given up), which the application sends once Accepted. A confirmed slot is never
rolled back: a Central System that is down for a while must not undo a good update.

The application's main() returns "soft"/"hard" when it must be started again from another
slot (a reset after an update, on the host: the board resets the chip instead); this
loop then imports it afresh in the same process. An application that fails to import or
dies is printed and the process ends with 1 (the board resets).

Before a slot is imported, its files are checked against its manifest.json and the
manifest's vendor signature against the trusted keys in vendor_keys.json next to the
config file (firmware/vendorsig.py): a slot that fails, whatever wrote it, never runs and
counts as a failed start (confirmed or not, the loader goes back to "previous"). The check
is imported from the factory application (or the frozen image) before any slot is on
sys.path, and dropped again before the chosen application is imported.

This file is never replaced by an update, so a broken update can always be undone. It
runs before any application is chosen, so apart from that check it imports nothing from
firmware/ (not even firmware/compat.py): the two interpreter checks it needs are written
out where used. An application that returns "reset" (a new firmware image is set to
boot) is followed by a reset of the chip; a host process ends with 0 and its supervisor
starts the image the partition table names (hal/ota.py).
"""
import json
import os
import sys

FACTORY = "factory"
MAX_TRIES = 3


def decide(active, exists):
    """(slot to run, state to store or None when unchanged) from the parsed active.json;
    `exists(slot)` tells whether a slot's files are there."""
    slot = active.get("slot") if isinstance(active, dict) else None
    if not isinstance(slot, str) or not slot or slot == FACTORY:
        return FACTORY, None
    state = dict(active)
    confirmed = bool(state.get("confirmed"))
    if not confirmed:
        tries = state.get("tries")
        state["tries"] = (tries if isinstance(tries, int) else 0) + 1
    if exists(slot) and (confirmed or state["tries"] <= MAX_TRIES):
        return slot, (None if state == active else state)
    prev = state.get("previous")
    if (not isinstance(prev, str) or not prev or prev == slot
            or (prev != FACTORY and not exists(prev))):
        prev = FACTORY
    version = state.get("previous_version") if prev != FACTORY else None
    return prev, {"slot": prev, "previous": prev, "version": version, "previous_version": version,
                  "tries": 0, "confirmed": True, "report": "InstallationFailed", "failed": slot}


def data_dir(config_path):
    """config.json's data_dir (default "data"), relative to the config file's folder."""
    data = "data"
    try:
        with open(config_path, "rb") as f:
            text = f.read()
        value = _strict(text).get("data_dir")
        if isinstance(value, str) and value:
            data = value
    except (OSError, ValueError, AttributeError):
        pass  # the application reports a broken config and falls back to "data" as well
    i = config_path.rfind("/")
    return data if data.startswith("/") or i < 0 else config_path[:i + 1] + data


def _strict(text):
    """json.loads after the strict check: the factory's (or frozen) firmware.store, as
    vendorsig in trusted(). A lenient parse would read `{"a": 1 2}` as {"a": 1} on
    MicroPython, and the loader would then follow a file the application refuses."""
    from firmware import store
    return store.loads(text)


def _is_dir(path):
    try:
        return os.stat(path)[0] & 0x4000 != 0
    except OSError:
        return False


def trusted(folder, config_path):
    """True when the slot in `folder` is signed by the vendor and intact (else printed)."""
    if not _is_dir(folder + "/firmware"):
        return False
    from firmware import vendorsig  # the factory's (or frozen) copy: no slot is on sys.path
    i = config_path.rfind("/")
    keys = vendorsig.load_keys((config_path[:i + 1] if i >= 0 else "") + vendorsig.KEYS_FILE)
    why = vendorsig.check_slot(folder, keys)
    if why:
        print("loader: %s refused: %s" % (folder, why))
    return why is None


def select(config_path):
    """Choose the application and count its start -> its folder, or None for the factory one."""
    apps = data_dir(config_path) + "/app"
    path = apps + "/active.json"
    try:
        with open(path, "rb") as f:
            active = _strict(f.read())
    except OSError:
        active = None
    except ValueError as e:
        print("loader: %s: %s; running the factory application" % (path, e))
        active = None
    seen = {}

    def exists(s):
        if s not in seen:  # checked once per start: hashing a slot takes a while
            seen[s] = trusted(apps + "/" + s, config_path)
        return seen[s]
    slot, state = decide(active, exists)
    if state is not None:
        # Stored before the application is imported: a start that crashes still counts.
        with open(path + ".tmp", "w") as f:
            f.write(json.dumps(state))
        os.rename(path + ".tmp", path)
        if state.get("failed"):
            print("loader: application %s did not come up; back to %s" % (state["failed"], slot))
    if slot == FACTORY:
        return None
    info = state or active
    tries = "" if info.get("confirmed") else ", start %d of %d" % (info["tries"], MAX_TRIES)
    print("loader: application %s, version %s%s" % (slot, info.get("version"), tries))
    return apps + "/" + slot


def forget():
    """Drop every application module, so that the next import reads the chosen folder.
    On the board boot.py has already imported the factory's firmware.compat."""
    for name in list(sys.modules):
        if name in ("firmware", "hal") or name.startswith("firmware.") or name.startswith("hal."):
            del sys.modules[name]
    cache = getattr(sys, "path_importer_cache", None)  # CPython caches folder listings
    if cache:
        cache.clear()


def crashed(exc):
    """The application failed to import or died: show why, then restart as a board does.
    The board resets the chip; a host process exits with 1 for its supervisor to restart."""
    print("loader: the application failed: %r" % (exc,))
    if hasattr(sys, "print_exception"):
        sys.print_exception(exc)  # MicroPython
    else:
        import traceback
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stdout)
    try:
        import machine
        reset = getattr(machine, "reset", None)  # the unix port's machine module has none
    except ImportError:
        reset = None
    if reset is not None:
        import time
        time.sleep(1)  # let the message out of the UART
        reset()
    sys.exit(1)


USAGE = """usage: micropython main.py [CONFIG]    (or: python3 main.py [CONFIG])

Runs the charger with CONFIG (default config.json; data_dir is relative to its folder).
Commands are read on stdin (type help); the log goes to stdout. Exit codes: 0 after quit,
1 when the application failed, 2 for a usage or config error, 130 after Ctrl-C."""


def _arguments(argv):
    """The config path from the command line; prints usage and exits for --help or a mistake.
    On a board there is no command line: config.json, and its last good copy if it is gone."""
    if argv and argv[0] in ("-h", "--help"):
        print(USAGE)
        sys.exit(0)
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(USAGE)
        print("main.py: error: expected at most one argument, the config file; got %s"
              % " ".join(argv))
        sys.exit(2)
    path = argv[0] if argv else "config.json"
    host = sys.platform in ("linux", "darwin", "win32", "cygwin", "freebsd")
    if host:
        # A mistyped path must not start the charger as the one of the last good config.
        try:
            with open(path):
                pass
        except OSError as e:
            why = "no such file" if e.args and e.args[0] == 2 else "cannot read it (%s)" % e
            print("main.py: error: config file %s: %s" % (path, why))
            print("usage: micropython main.py [CONFIG]  (--help for more)")
            sys.exit(2)
    return path


def reset():
    """A new firmware image boots at a chip reset; a host process ends for its supervisor."""
    print("loader: resetting to boot the new firmware image")
    try:
        import machine
        hard = getattr(machine, "reset", None)
    except ImportError:
        hard = None
    if hard is not None:
        hard()
    sys.exit(0)


def main():
    path = _arguments(sys.argv[1:])
    try:
        # CPython: a .pyc written into a slot's __pycache__ would be an unsigned file there,
        # and a crafted one would run instead of its checked source.
        sys.dont_write_bytecode = True
    except AttributeError:
        pass  # MicroPython writes no bytecode
    while True:
        forget()  # the check in select() must come from the factory, not the last slot
        folder = select(path)
        forget()
        if folder:
            sys.path.insert(0, folder)
        try:
            from firmware import app
            reason = app.main(path)
        except Exception as e:
            crashed(e)
        if reason == "interrupted":
            sys.exit(130)  # as a shell reports Ctrl-C: a supervisor sees it did not quit
        if reason == "reset":
            reset()
        if reason not in ("soft", "hard"):
            return
        if folder:
            sys.path.remove(folder)


if __name__ == "__main__":
    main()

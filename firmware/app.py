"""The application: loads the config, picks the board (hal/boards/) and runs the charger.

main.py (the loader) imports this module from the application it chose and calls main().
A Reset from the Central System restarts the charger in this same process on the host (on
the board the HAL resets the chip), so it reconnects and boots again as a board would.
When the reset follows an installed update, main() returns instead, and the loader
imports the new application.
"""
import sys

from firmware.compat import asyncio, ON_DEVICE, unix_time, unload
from firmware.log import Log


_RETRY_S = 60  # a board without a usable config looks again after this long


def load_config(path, log):
    """The checked config.json (or the last good copy). The checker's code is dropped after:
    it is needed again only at the next start. No usable config at all ends the process on
    a host; a board says why and tries again every minute (a reset would only loop, and a
    technician may be fixing the file or the flash meanwhile)."""
    while True:
        from firmware import config
        try:
            return config.load(path, log)
        except config.ConfigError as e:
            print("config: %s" % e)
            if not ON_DEVICE:
                sys.exit(2)
        finally:
            unload("firmware.config")
        print("config: trying again in %d s" % _RETRY_S)
        from firmware.compat import sleep_ms
        sleep_ms(_RETRY_S * 1000)


def make_board(cfg):
    """The board `hardware.board` names (hal/boards/); on a host the simulator stands in."""
    from hal import boards
    return boards.load(boards.name(cfg) if ON_DEVICE else "sim").make_board(cfg)


def _startup_line(cp, path, cfg):
    impl = sys.implementation
    return "uCharge %s on %s %s starting as %s (%d connector(s)); config %s, data_dir %s" % (
        cp.firmware_version or "(no version)", impl.name,
        ".".join(str(n) for n in impl.version[:3]), cfg["csms"]["id"], len(cp.connectors),
        path, cfg["_data"])


async def serve(path, current=None):
    """Run chargers until "quit", or until a reset must start another application
    ("soft"/"hard" returned). `current[0]` is the charger running now."""
    boot_log = Log(now=unix_time)
    cfg = load_config(path, boot_log)
    # Imported once the config is checked and its tables are freed: the boot peak is lower.
    from firmware import updates
    from firmware.chargepoint import ChargePoint
    board = make_board(cfg)
    running = updates.active_slot(cfg["_data"])
    current = current or [None]
    listener = None
    try:
        while True:
            log = Log(cfg["log"]["level"], board.rtc.now, cfg["_data"])
            for secret in cfg.get("_secrets", ()):
                log.hide(secret)
            for hw in board.connectors:
                hw.relay.set(False)  # a (re)start never leaves a contactor closed
            if cfg.get("_invalid"):
                board.indicator.show("error")
            cp = ChargePoint(cfg, board, log)
            current[0] = cp
            if listener is None and not ON_DEVICE:  # the host's stdin console; a board has none
                from firmware import console
                listener = asyncio.create_task(console.run(lambda: current[0], board))
            log.info("main", _startup_line(cp, path, cfg))
            try:
                reason = await cp.run()
            finally:
                # However the charger stops (quit, reset, Ctrl-C from a deploy tool), no
                # contactor stays closed.
                for hw in board.connectors:
                    hw.relay.set(False)
            log.info("main", "stopped: %s" % reason)
            if reason == "quit":
                return reason
            if updates.active_slot(cfg["_data"]) != running:
                log.flush()
                return reason
            if updates.image_switched(cfg):  # a new firmware image boots at a chip reset
                log.flush()
                return "reset"
            cfg = load_config(path, log)
    finally:
        if listener is not None:
            listener.cancel()
            await asyncio.sleep(0)  # let the console task unwind before the loop ends


def main(path):
    """Run the application; -> "quit", "interrupted" (Ctrl-C), "soft"/"hard" when the loader
    must load it again, or "reset" when only a reset of the chip starts what must run next (a
    new image)."""
    current = [None]
    try:
        return asyncio.run(serve(path, current))
    except KeyboardInterrupt:
        cp = current[0]
        if cp is not None:
            stop(cp)
        return "interrupted"


def stop(cp):
    """After Ctrl-C. CPython's asyncio.run has already cancelled the charger (its contactors
    opened, the websocket closed with 1001); MicroPython's stops where it was, so do the
    same here on a fresh loop. Then a stop line, on the console and in the log ring."""
    for hw in cp.board.connectors:
        hw.relay.set(False)
    conn = cp.link.conn
    if conn is not None:
        if not conn.orphaned():  # a sender stopped mid-drain still holds the frame lock
            cp.log.warn("ws", "Ctrl-C came while a frame was being written: the link is"
                        " dropped without a close frame")
        loop = asyncio.new_event_loop()  # MicroPython: also drops the interrupted tasks
        try:
            loop.run_until_complete(asyncio.wait_for(cp.link.close(1001, "going away"), 2))
        except Exception:
            pass  # the link may be half dead: nothing more to do for it
    cp.log.warn("main", "stopped: interrupted (Ctrl-C); contactors open")
    cp.log.flush()

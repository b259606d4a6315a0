"""Board registry: `hardware.board` in config.json names a module here.

A board module holds its pin rules and builds the board:
    PINS       (lo, hi) GPIO numbers the chip has, or None (no pins: the simulator)
    DEFAULTS   ((config path, value), ...) where the board's wiring differs from the
               defaults in hal/hwspec.py
    make_board(cfg) -> hal.base.Board, from a validated config
A new board is a new file here; nothing else needs to know its name.
"""
import sys

DEFAULT = "esp32_devkit"  # configs without hardware.board were written for it


def name(cfg):
    """The board a config names (the default when it names none)."""
    hw = cfg.get("hardware")
    board = hw.get("board") if isinstance(hw, dict) else None
    return board if isinstance(board, str) and board else DEFAULT


def load(board):
    """The module hal/boards/<board>.py; ImportError when there is none."""
    if not board or "." in board or "/" in board or "\\" in board:
        raise ImportError(board)
    full = "hal.boards." + board
    __import__(full)
    return sys.modules[full]

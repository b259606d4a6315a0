"""The host simulator as a board (hal/sim.py): no pins, driven from the console."""
PINS = None
DEFAULTS = ()


def make_board(cfg):
    from hal import sim
    return sim.make_board(cfg)

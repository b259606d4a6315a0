"""RAM budget guard: a full charging session (boot, status, plug, swipe, start, 10 meter values,
stop) completes on the MicroPython unix port from the .mpy bundle inside HEAP_BUDGET_KB.

The unix port is 64-bit: objects take up to twice what they take on the 32-bit ESP32. The
figure is a regression guard at today's measured need plus margin (`make bench` prints the
smallest heap that works); the ESP32 target without PSRAM is lower still, see README.
"""
import asyncio

from tools import bench, bundle

HEAP_BUDGET_KB = 224


def test_full_session_from_the_mpy_bundle_fits_the_heap_budget(tmp_path):
    dest = str(tmp_path / "bundle")
    bundle.build(dest, include_config=False)
    heap = asyncio.run(bench.session(dest, HEAP_BUDGET_KB, quiet=False,
                                     folder=str(tmp_path / "run")))
    assert heap is not None, "the session did not complete within %d KB" % HEAP_BUDGET_KB
    assert 0 < heap.idle <= heap.peak < HEAP_BUDGET_KB * 1024


# Heap besides the image (137 KB measured): what a board with a ROMFS partition needs.
ROMFS_BUDGET_KB = 152


def test_full_session_runs_from_a_romfs_image_with_bytecode_in_place(tmp_path):
    # The unix port has no ROMFS partition: the image is mounted from RAM, so it sits in this
    # heap too; on a board it stays in flash and only the rest counts.
    folder, image = bench.build_romfs(str(tmp_path / "rom"))
    heap_kb = ROMFS_BUDGET_KB + image // 1024 + 1
    heap = asyncio.run(bench.session(folder, heap_kb, quiet=False, folder=str(tmp_path / "run"),
                                     script=("rom_run.py", bench.ROM_IMAGE)))
    assert heap is not None, ("the session from the ROMFS image did not complete within %d KB"
                              % heap_kb)
    assert image < heap.idle <= heap.peak
    assert heap.peak - image < ROMFS_BUDGET_KB * 1024

"""The 32-bit frozen build (`make unix32`, tests/mp32.py): what it is made of and how it runs."""
import subprocess

from tests.mp32 import binary, needs_mp32, run_folder

_PROBE = """
import sys, os
import firmware, firmware.ws, hal
print("maxsize", sys.maxsize)
print("file", firmware.ws.__file__)
try:
    os.stat(firmware.ws.__file__)
    print("on the filesystem")
except OSError:
    print("frozen")
"""


@needs_mp32
def test_the_32bit_build_is_i386_with_the_application_frozen(tmp_path):
    mp32 = binary()
    with open(mp32, "rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF" and head[4] == 1, "not a 32-bit ELF"  # EI_CLASS 1 = 32-bit
    out = subprocess.run([mp32, "-c", _PROBE], cwd=run_folder(tmp_path / "run"),
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "maxsize 2147483647" in out.stdout
    assert "file firmware/ws.py" in out.stdout and "\nfrozen" in out.stdout, out.stdout


@needs_mp32
def test_a_firmware_folder_in_the_working_directory_shadows_the_frozen_package(tmp_path):
    mp32 = binary()
    cwd = tmp_path / "shadow"
    (cwd / "firmware").mkdir(parents=True)
    (cwd / "firmware" / "__init__.py").write_text("SHADOW = 1\n")
    out = subprocess.run([mp32, "-c", "import firmware; print(getattr(firmware, 'SHADOW', 0))"],
                         cwd=cwd, capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == "1", out.stdout + out.stderr
    try:
        run_folder(cwd)
    except ValueError as e:
        assert "shadow" in str(e)
    else:
        raise AssertionError("run_folder accepted a folder holding firmware/")


@needs_mp32
def test_deploy_refuses_to_copy_firmware_onto_a_board_whose_image_has_it_frozen(tmp_path):
    from tools import deploy
    # The frozen binary answers the deploy's board script, as the board's REPL would.
    board = tmp_path / "board"
    board.mkdir()
    mp32 = deploy.Folder(str(board), python=binary())
    lines = []
    try:
        deploy.deploy(mp32, str(tmp_path / "bundle"), out=lines.append)
    except deploy.BoardError as e:
        assert "frozen" in str(e) and "--scripts-only" in str(e) and "make firmware" in str(e)
    else:
        raise AssertionError("deploy copied firmware/ onto a frozen image: %s" % lines)
    assert sorted(p.name for p in board.iterdir()) == []

    # The fix it names: only the scripts and the config; a module copy on flash is removed.
    (board / "firmware").mkdir()
    (board / "firmware" / "app.mpy").write_bytes(b"M")
    p = deploy.deploy(mp32, str(tmp_path / "bundle"), out=lines.append, scripts_only=True)
    assert sorted(p["copy"]) == ["boot.py", "config.json", "main.py", "manifest.json"]
    assert not (board / "firmware" / "app.mpy").exists()
    assert (board / "main.py").exists() and (board / "config.json").exists()


def test_deploy_to_a_board_without_a_frozen_image_still_copies_the_modules(tmp_path):
    from tools import deploy
    board = tmp_path / "board"
    board.mkdir()
    p = deploy.deploy(deploy.Folder(str(board)), str(tmp_path / "bundle"), out=lambda s: None)
    assert any(rel.startswith("firmware/") for rel in p["copy"])
    assert (board / "firmware").is_dir()


def test_without_the_source_or_the_32bit_toolchain_the_tests_skip_saying_why(monkeypatch,
                                                                             tmp_path):
    from tests import mp32
    monkeypatch.delenv("MPY_DIR", raising=False)
    monkeypatch.setattr(mp32, "TARBALLS", [])
    monkeypatch.setattr(mp32, "ROOT", str(tmp_path))  # no build/micropython unpacked either
    assert "../shared/micropython/*.tar.gz not found" in mp32.missing()
    path, why = mp32.build()
    assert path is None and "no MicroPython source" in why
    monkeypatch.setenv("MPY_DIR", str(tmp_path))
    assert "has no ports/unix" in mp32.missing()
    (tmp_path / "ports" / "unix").mkdir(parents=True)
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    assert "gcc-multilib" in mp32.missing()

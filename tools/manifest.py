# The charger application as frozen bytecode: firmware/ and hal/ compiled into the
# MicroPython image (boot.py, main.py and config.json stay files on the board).
# Included by the port manifests tools/manifest_esp32.py and tools/manifest_unix32.py;
# paths are relative to this file.
package("firmware", base_path="..")
package("hal", base_path="..")

# ESP32 image: MicroPython's own ESP32 modules (asyncio, _boot, inisetup...) plus the
# charger. `make firmware BOARD=ESP32_GENERIC MPY_DIR=...` passes this as FROZEN_MANIFEST.
include("$(PORT_DIR)/boards/manifest.py")
include("manifest.py")

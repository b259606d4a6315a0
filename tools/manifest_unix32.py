# 32-bit unix port with the charger frozen in, the host's stand-in for the ESP32 image
# (`make unix32`): the standard variant's modules (asyncio, ssl) plus the charger.
include("$(PORT_DIR)/variants/standard/manifest.py")
include("manifest.py")

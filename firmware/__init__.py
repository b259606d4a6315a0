"""OCPP 1.6J charge point firmware (MicroPython and CPython)."""

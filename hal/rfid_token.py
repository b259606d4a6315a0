"""Card swipes from a UID reader: each presented card is reported once.

The low-level reader (e.g. hal.rfid_mfrc522.Mfrc522) answers read_uid() with
the UID bytes of the card in the field, or None. A card held on the reader is
seen on every poll; it is reported again only after it was away for
`absent_ms`, while a different card is reported at once.
"""
import binascii

from firmware.compat import ticks_ms, ticks_diff
from hal import base

_ABSENT_MS = 1000
_MAX_TAG = 20  # OCPP 1.6 IdToken is CiString20


def id_tag(uid):
    """OCPP idTag for a UID: uppercase hex, e.g. b"\\x04\\xa2\\x1b\\x7f" -> "04A21B7F"."""
    return binascii.hexlify(bytes(uid)).decode().upper()[:_MAX_TAG]


class TokenReader(base.TokenReader):
    def __init__(self, reader, absent_ms=_ABSENT_MS, clock=ticks_ms):
        self._reader = reader
        self._absent = absent_ms
        self._clock = clock
        self._tag = None
        self._seen = 0

    def poll(self):
        try:
            uid = self._reader.read_uid()
        except OSError:
            uid = None  # a flaky SPI read is just "no card" this time
        if not uid:
            return None
        now = self._clock()
        tag = id_tag(uid)
        again = tag == self._tag and ticks_diff(now, self._seen) < self._absent
        self._tag = tag
        self._seen = now
        return None if again else tag

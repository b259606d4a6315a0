import pytest

from tests.linkproxy import LinkProxy


@pytest.fixture
def link(csms):
    """A cuttable network path to the CSMS; point a charger at it with csms_config=link.config."""
    proxy = LinkProxy(csms.port).start()
    proxy.config = {"url": proxy.url(), "reconnect_min": 0.2, "reconnect_max": 1.0}
    yield proxy
    proxy.stop()

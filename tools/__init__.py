"""Host-side tools (CPython only): the local Central System used by the tests."""

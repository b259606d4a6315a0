"""The README's reference tables say what the code's tables say (tools/readme_tables.py)."""
import pytest

from tools import readme_tables


def test_readme_tables_match_the_code():
    with open(readme_tables.README, encoding="utf-8") as f:
        text = f.read()
    assert readme_tables.stale(text) == [], "run: python -m tools.readme_tables"


def test_a_changed_table_is_found_stale():
    with open(readme_tables.README, encoding="utf-8") as f:
        text = f.read()
    edited = text.replace("| HeartbeatInterval | Core |", "| HeartbeatInterval | Nope |")
    assert edited != text
    assert readme_tables.stale(edited) == ["ocpp-keys"]


def test_a_missing_block_is_an_error():
    with pytest.raises(KeyError):
        readme_tables.render("no blocks here")

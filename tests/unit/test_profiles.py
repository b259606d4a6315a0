"""The feature-profile table (firmware/profiles.py) against the code and the key table."""
import importlib

from firmware import keys, ocppj, profiles


def test_every_action_resolves_to_a_function_of_its_module():
    for _profile, name, actions, _keys, _file in profiles.FEATURES:
        mod = importlib.import_module("firmware." + name)
        for action in actions.split():
            assert profiles.module_for(action) == name
            assert callable(getattr(mod, action)), (name, action)
            assert ocppj.is_known(action), action


def test_stateful_features_have_load():
    for _profile, name, _actions, _keys, state_file in profiles.FEATURES:
        mod = importlib.import_module("firmware." + name)
        if state_file:
            assert callable(mod.load), name


def test_action_lookup_matches_whole_words_only():
    assert profiles.module_for("Reset") == "core"
    for action in ("Rese", "", "SendLocal", "ListVersion", "GetLocalListVersion "):
        assert profiles.module_for(action) is None, action


def test_every_key_belongs_to_exactly_one_profile():
    owners = {}
    for profile, _name, _actions, names, _file in profiles.FEATURES:
        for key in names.split():
            assert key not in owners, key
            owners[key] = profile
    assert sorted(owners) == sorted(keys.names())


def test_supported_feature_profiles_come_from_the_table():
    assert profiles.supported() == ("Core,FirmwareManagement,LocalAuthListManagement,"
                                    "Reservation,RemoteTrigger,SmartCharging")


def test_supported_feature_profiles_name_only_1_6_profiles():
    """The security extension's rows ("Security") are no OCPP 1.6 feature profile."""
    names = profiles.supported().split(",")
    assert set(names) <= set(profiles.PROFILES_1_6)
    assert "Security" not in names
    assert profiles.module_for("GetLog") == "getlog"
    assert profiles.module_for("ExtendedTriggerMessage") == "exttrigger"
    for row in profiles.FEATURES:
        assert row[0] in profiles.PROFILES_1_6 or row[0] == "Security", row

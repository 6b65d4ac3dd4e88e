# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The key repository rules that the coming keystone_keys module applies: rotation plan, safety, parsing."""

import pytest
from ansible_collections.stackwright.cloud.plugins.module_utils import fernet_keys as fk

NOW = 1_800_000_000


def test_a_generated_key_is_a_valid_fernet_key_and_unique():
    first, second = fk.generate_key(), fk.generate_key()
    assert fk.is_valid_key(first) and fk.is_valid_key(second)
    assert first != second


@pytest.mark.parametrize("text", ["", "not base64!", "c2hvcnQ=", "A" * 22 + "=="])
def test_invalid_keys_are_recognised(text):
    assert not fk.is_valid_key(text)


def test_checksum_ignores_surrounding_whitespace_and_differs_per_key():
    key = fk.generate_key()
    assert fk.key_checksum(key + "\n") == fk.key_checksum(key)
    assert fk.key_checksum(key) != fk.key_checksum(fk.generate_key())


def test_only_index_named_files_are_keys(tmp_path):
    for name in ("0", "1", "10", "01", "tmp.abc", "2.swp"):
        (tmp_path / name).write_text(fk.generate_key())
    (tmp_path / "3").mkdir()
    assert sorted(fk.list_key_files(str(tmp_path))) == [0, 1, 10]


def test_minimum_keys_cover_every_usable_token():
    # One day between rotations, tokens usable for 1 h + 2 days: 3 rotations pass, plus primary and staged.
    assert fk.minimum_active_keys(3600, 172800, 86400) == 5
    assert fk.minimum_active_keys(3600, 0, 3600) == 3
    with pytest.raises(fk.KeyRepositoryError, match="positive"):
        fk.minimum_active_keys(3600, 0, 0)


def test_default_min_interval_leaves_a_margin_of_at_most_an_hour():
    assert fk.default_min_interval(86400) == 86400 - 3600
    assert fk.default_min_interval(3600) == 3600 - 360


def test_rotation_promotes_the_staged_key_and_drops_the_oldest_secondary():
    assert fk.plan_rotation([0, 1, 2], 3) == {"promoted_to": 3, "removed": [1], "after": [0, 2, 3]}
    assert fk.plan_rotation([0, 1], 5) == {"promoted_to": 2, "removed": [], "after": [0, 1, 2]}


def test_rotation_refuses_a_repository_without_staged_key_or_too_few_keys():
    with pytest.raises(fk.KeyRepositoryError, match="no staged key 0"):
        fk.plan_rotation([1, 2], 3)
    with pytest.raises(fk.KeyRepositoryError, match="at least 2"):
        fk.plan_rotation([0, 1], 1)


def test_a_key_stops_signing_when_its_successor_is_promoted():
    # 0 staged (created by the last rotation), 3 primary, 2 and 1 secondaries; mtimes are creation as staged key.
    mtimes = {0: NOW - 100, 3: NOW - 86500, 2: NOW - 172900, 1: NOW - 259300}
    assert fk.signing_ended([0, 1, 2, 3], mtimes, NOW) == {1: NOW - 86500, 2: NOW - 100, 3: NOW}


def test_removing_a_key_that_signed_a_live_token_is_unsafe():
    mtimes = {0: NOW - 100, 2: NOW - 5000, 1: NOW - 9000}
    # Key 1 stopped signing when 2 was promoted, i.e. when 0 was created: 100 s ago.
    assert fk.unsafe_removals([1], [0, 1, 2], mtimes, NOW, token_lifetime=3600) == {1: 100}
    assert fk.unsafe_removals([1], [0, 1, 2], mtimes, NOW, token_lifetime=60) == {}


def test_keystone_settings_are_read_and_missing_ones_are_none():
    text = "[token]\nexpiration = 7200\n[fernet_tokens]\nmax_active_keys = 5\n"
    assert fk.read_keystone_settings(text) == {
        "token_expiration": 7200,
        "allow_expired_window": None,
        "max_active_keys": 5,
    }
    with pytest.raises(fk.KeyRepositoryError, match="is not a number"):
        fk.read_keystone_settings("[token]\nexpiration = soon\n")


def test_a_key_set_is_parsed_with_integer_indices_and_stripped_keys():
    staged, primary = fk.generate_key(), fk.generate_key()
    assert fk.validate_key_set("fernet", {"0": staged + "\n", 1: primary}) == {0: staged, 1: primary}


@pytest.mark.parametrize(
    ("make_keys", "message"),
    [
        (dict, "is empty"),
        (lambda: {"0": fk.generate_key(), "x": fk.generate_key()}, "'x' is not a key index"),
        (lambda: {"1": fk.generate_key()}, r"holds \[1\]"),
    ],
)
def test_an_unsafe_key_set_is_refused(make_keys, message):
    with pytest.raises(fk.KeyRepositoryError, match=message):
        fk.validate_key_set("fernet", make_keys())


def test_a_malformed_key_is_refused_without_showing_it():
    secret = "typo" + fk.generate_key()[4:-1]
    with pytest.raises(fk.KeyRepositoryError) as refused:
        fk.validate_key_set("credential", {"0": fk.generate_key(), "1": secret})
    assert "is not a Fernet key" in str(refused.value) and secret not in str(refused.value)

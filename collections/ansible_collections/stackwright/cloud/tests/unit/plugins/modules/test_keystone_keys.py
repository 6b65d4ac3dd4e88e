# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.keystone_keys on key repositories in a temporary directory, laid out as the keystone role
makes them (keystone-manage fernet_setup / credential_setup, then a copy to the other controllers)."""

import grp
import os
import pwd
import re
import stat
import time

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.module_utils import fernet_keys as fk
from ansible_collections.stackwright.cloud.plugins.modules import keystone_keys
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module

DAY = 86400
# keystone.conf as roles/keystone renders it with its defaults.
KEYSTONE_CONF = """\
[DEFAULT]

[token]
provider = fernet
expiration = 3600
allow_expired_window = 172800

[fernet_tokens]
key_repository = /etc/keystone/fernet-keys/
max_active_keys = 3

[credential]
provider = fernet
key_repository = /etc/keystone/credential-keys/
"""


class NoCommands:
    """The module reads and writes files only."""

    def run_command(self, argv, **_kwargs):
        raise AssertionError(f"unexpected command {argv}")


class Controller:
    """One controller's /etc/keystone, in a directory of its own."""

    def __init__(self, root):
        root.mkdir()
        self.root = root
        self.fernet = root / "fernet-keys"
        self.credential = root / "credential-keys"
        self.conf = root / "keystone.conf"
        self.conf.write_text(KEYSTONE_CONF)

    def lay_out(self, path, ages):
        """A repository with one key per {index: age in seconds}, 0600 in a 0700 directory."""
        path.mkdir(mode=0o700, exist_ok=True)
        now = time.time()
        for index, age in ages.items():
            key_file = path / str(index)
            key_file.write_text(fk.generate_key())
            key_file.chmod(0o600)
            os.utime(key_file, (now - age, now - age))

    def set_up(self, days_ago=2):
        """What fernet_setup and credential_setup leave: a staged key 0 and a primary key 1, made together."""
        for path in (self.fernet, self.credential):
            self.lay_out(path, {0: days_ago * DAY, 1: days_ago * DAY})

    def keys(self, path):
        return {int(name): (path / name).read_text() for name in os.listdir(path) if fk.KEY_NAME.match(name)}

    def snapshot(self):
        """Every file under the controller: content, mode and mtime."""
        files = {}
        for directory, _dirs, names in os.walk(self.root):
            for name in names:
                full = os.path.join(directory, name)
                info = os.stat(full)
                with open(full, encoding="ascii") as handle:
                    files[full] = (handle.read(), stat.S_IMODE(info.st_mode), info.st_mtime_ns)
        return files

    def args(self, **args):
        defaults = {
            "fernet_path": str(self.fernet),
            "credential_path": str(self.credential),
            "config_file": str(self.conf),
            "owner": pwd.getpwuid(os.getuid()).pw_name,
            "group": grp.getgrgid(os.getgid()).gr_name,
        }
        return {**defaults, **args}


@pytest.fixture(autouse=True)
def module(monkeypatch):
    patch_module(monkeypatch, NoCommands())


@pytest.fixture
def ctl1(tmp_path):
    return Controller(tmp_path / "ctl1")


@pytest.fixture
def ctl2(tmp_path):
    return Controller(tmp_path / "ctl2")


def run(controller, **args):
    with patch_module_args(controller.args(**args)), pytest.raises(Exited) as caught:
        keystone_keys.main()
    return caught.value.result


def refused(controller, **args):
    with patch_module_args(controller.args(**args)), pytest.raises(Failed) as caught:
        keystone_keys.main()
    return caught.value.result


def distribute(source_result, target, **args):
    return run(
        target,
        state="present",
        key_material=source_result["key_material"],
        key_mtimes=source_result["key_mtimes"],
        **args,
    )


def token_keys(path):
    """The keys as keystone loads them for every request: highest index first, all of them decrypt."""
    fernet = pytest.importorskip("cryptography.fernet")
    indices = sorted((int(name) for name in os.listdir(path) if fk.KEY_NAME.match(name)), reverse=True)
    return fernet.MultiFernet([fernet.Fernet((path / str(index)).read_text()) for index in indices])


# --- state: status ---------------------------------------------------------------------------------------------------


def test_status_reports_indices_checksums_and_ages_but_never_a_key(ctl1):
    ctl1.set_up(days_ago=2)
    result = run(ctl1)
    fernet = result["repositories"]["fernet"]
    assert result["changed"] is False
    assert fernet["indices"] == [0, 1]
    assert fernet["primary"] == 1
    assert fernet["checksums"] == {str(i): fk.key_checksum(k) for i, k in ctl1.keys(ctl1.fernet).items()}
    assert abs(fernet["ages"]["0"] - 2 * DAY) < 60
    assert fernet["problems"] == []
    assert fernet["next_rotation"] == {"removes": [], "safe_after": None, "error": None}
    assert "key_material" not in result
    for path in (ctl1.fernet, ctl1.credential):
        for key in ctl1.keys(path).values():
            assert key not in repr(result)


def test_status_returns_the_keys_only_when_asked(ctl1):
    ctl1.set_up()
    result = run(ctl1, return_keys=True)
    assert result["key_material"]["fernet"] == {str(i): k for i, k in ctl1.keys(ctl1.fernet).items()}
    assert result["key_material"]["credential"] == {str(i): k for i, k in ctl1.keys(ctl1.credential).items()}
    assert set(result["key_mtimes"]["fernet"]) == {"0", "1"}


def test_status_reports_what_is_wrong(ctl1):
    ctl1.set_up()
    (ctl1.fernet / "1").chmod(0o644)
    (ctl1.fernet / "3").write_text("not a key")
    (ctl1.credential / "0").unlink()
    result = run(ctl1)
    assert result["repositories"]["fernet"]["problems"] == [
        "key 1: mode 0644, expected 0600",
        "key 3: not a Fernet key",
        "key 3: mode 0644, expected 0600",
    ]
    assert result["repositories"]["credential"]["problems"] == ["no staged key 0"]
    assert "no staged key 0" in result["repositories"]["credential"]["next_rotation"]["error"]


def test_settings_come_from_keystone_conf_with_keystones_defaults(ctl1):
    ctl1.set_up()
    ctl1.conf.write_text("[token]\nexpiration = 7200\n[fernet_tokens]\nmax_active_keys = 5\n")
    settings = run(ctl1)["settings"]
    assert settings["token_lifetime"] == 7200 + 172800
    assert settings["min_interval"] == (7200 + 172800) // 3
    assert settings["defaults_used"] == ["allow_expired_window"]

    ctl1.conf.unlink()
    settings = run(ctl1)["settings"]
    assert (settings["token_lifetime"], settings["max_active_keys"]) == (3600 + 172800, 3)
    assert settings["min_interval"] == 3600 + 172800
    assert settings["defaults_used"] == ["allow_expired_window", "max_active_keys", "token_expiration"]


def test_with_two_keys_no_interval_is_safe():
    assert fk.safe_rotation_interval(3600, 2) is None
    assert fk.safe_rotation_interval(176400, 4) == 88200


# --- state: rotated --------------------------------------------------------------------------------------------------


def test_a_rotation_promotes_the_staged_key_and_makes_a_new_one(ctl1):
    ctl1.set_up(days_ago=2)
    before = ctl1.keys(ctl1.fernet)
    credential_before = ctl1.keys(ctl1.credential)
    staged_mtime = (ctl1.fernet / "0").stat().st_mtime

    result = run(ctl1, state="rotated", repositories=["fernet"])

    after = ctl1.keys(ctl1.fernet)
    assert result["changed"] is True
    assert result["rotation"] == {"fernet": {"promoted_to": 2, "removed": [], "after": [0, 1, 2]}}
    assert sorted(after) == [0, 1, 2]
    assert after[2] == before[0] and after[1] == before[1]
    assert after[0] not in before.values() and fk.is_valid_key(after[0])
    # The promoted key keeps the time it was made as staged key, as a rename does.
    assert int((ctl1.fernet / "2").stat().st_mtime) == int(staged_mtime)
    assert time.time() - (ctl1.fernet / "0").stat().st_mtime < 60
    assert stat.S_IMODE((ctl1.fernet / "0").stat().st_mode) == 0o600
    assert sorted(os.listdir(ctl1.fernet)) == ["0", "1", "2"], "no temporary file is left"
    assert ctl1.keys(ctl1.credential) == credential_before
    assert "credential" not in result["repositories"]
    assert result["repositories"]["fernet"]["checksums"]["2"] == fk.key_checksum(before[0])
    assert "key_material" not in result


def test_rotation_then_distribution_gives_identical_repositories(ctl1, ctl2):
    ctl1.set_up(days_ago=3)
    setup = run(ctl1, return_keys=True)
    distribute(setup, ctl2)
    assert ctl2.keys(ctl2.fernet) == ctl1.keys(ctl1.fernet)

    rotation = run(ctl1, state="rotated", return_keys=True)
    copy = distribute(rotation, ctl2)

    assert copy["changed"] is True
    for path1, path2 in ((ctl1.fernet, ctl2.fernet), (ctl1.credential, ctl2.credential)):
        assert ctl2.keys(path2) == ctl1.keys(path1)
        for name in os.listdir(path1):
            one, two = (path1 / name).stat(), (path2 / name).stat()
            assert (stat.S_IMODE(two.st_mode), int(two.st_mtime)) == (0o600, int(one.st_mtime))
        assert stat.S_IMODE(path2.stat().st_mode) == 0o700
    status1, status2 = run(ctl1), run(ctl2)
    assert status2["key_mtimes"] == status1["key_mtimes"]
    for name in ("fernet", "credential"):
        assert status2["repositories"][name]["checksums"] == status1["repositories"][name]["checksums"]


def test_tokens_stay_valid_on_every_controller_across_a_rotation(ctl1, ctl2):
    ctl1.set_up(days_ago=3)
    distribute(run(ctl1, return_keys=True), ctl2)
    issued_before = token_keys(ctl1.fernet).encrypt(b"token issued before the rotation")

    rotation = run(ctl1, state="rotated", return_keys=True)
    issued_after = token_keys(ctl1.fernet).encrypt(b"token issued after the rotation")

    # ctl2 has not received the rotation yet: it already holds the new primary key as its staged key.
    assert token_keys(ctl2.fernet).decrypt(issued_after) == b"token issued after the rotation"
    assert token_keys(ctl1.fernet).decrypt(issued_before) == b"token issued before the rotation"
    distribute(rotation, ctl2)
    for controller in (ctl1, ctl2):
        assert token_keys(controller.fernet).decrypt(issued_before) == b"token issued before the rotation"
        assert token_keys(controller.fernet).decrypt(issued_after) == b"token issued after the rotation"


def test_a_key_that_signed_a_usable_token_is_never_removed(ctl1):
    # Set up two days ago and rotated yesterday: key 1 stopped signing yesterday, tokens live 49 h.
    ctl1.lay_out(ctl1.fernet, {0: DAY - 30, 1: 2 * DAY, 2: 2 * DAY})
    ctl1.lay_out(ctl1.credential, {0: 2 * DAY, 1: 2 * DAY})
    before = ctl1.snapshot()

    failure = refused(ctl1, state="rotated")

    assert ctl1.snapshot() == before
    msg = failure["msg"]
    assert msg.startswith("Refusing to rotate the fernet keys: the rotation would remove key 1")
    assert "Rotate in 25 h or later (with 3 keys rotations must be at least 49 h apart)" in msg
    assert "max_active_keys (keystone_fernet_max_active_keys) to 5 to rotate this often" in msg
    assert msg.endswith("Nothing was changed.")
    assert failure["repositories"]["fernet"]["next_rotation"]["removes"] == [1]

    status = run(ctl1)["repositories"]["fernet"]["next_rotation"]
    assert status["removes"] == [1]
    safe_after = time.mktime(time.strptime(status["safe_after"], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert abs(safe_after - (time.time() + 25 * 3600)) < 120


def test_the_rotation_is_allowed_once_the_tokens_of_the_removed_key_expired(ctl1):
    ctl1.lay_out(ctl1.fernet, {0: DAY - 30, 1: 2 * DAY, 2: 2 * DAY})
    ctl1.conf.write_text(KEYSTONE_CONF.replace("allow_expired_window = 172800", "allow_expired_window = 3600"))
    result = run(ctl1, state="rotated", repositories=["fernet"])
    assert result["rotation"]["fernet"] == {"promoted_to": 3, "removed": [1], "after": [0, 2, 3]}
    assert sorted(ctl1.keys(ctl1.fernet)) == [0, 2, 3]


def test_force_rotates_when_the_operator_asks(ctl1):
    ctl1.lay_out(ctl1.fernet, {0: 60, 1: DAY, 2: DAY})
    result = run(ctl1, state="rotated", repositories=["fernet"], force=True)
    assert result["rotation"]["fernet"]["removed"] == [1]
    assert sorted(ctl1.keys(ctl1.fernet)) == [0, 2, 3]


def test_more_keys_allow_more_frequent_rotations(ctl1):
    ctl1.conf.write_text(KEYSTONE_CONF.replace("max_active_keys = 3", "max_active_keys = 5"))
    # Daily rotations: the key to remove stopped signing three days ago, longer than the 49 h tokens live.
    ctl1.lay_out(ctl1.fernet, {0: DAY, 1: 5 * DAY, 2: 5 * DAY, 3: 4 * DAY, 4: 3 * DAY})
    result = run(ctl1, state="rotated", repositories=["fernet"])
    assert result["rotation"]["fernet"]["removed"] == [1]
    assert result["settings"]["min_interval"] == 58800


def test_credential_keys_keep_three_whatever_max_active_keys_says(ctl1):
    ctl1.conf.write_text(KEYSTONE_CONF.replace("max_active_keys = 3", "max_active_keys = 6"))
    # Rotated a minute ago: the token lifetime does not apply to credentials (credential_migrate does).
    ctl1.lay_out(ctl1.credential, {0: 60, 1: 120, 2: 120})
    result = run(ctl1, state="rotated", repositories=["credential"])
    assert result["rotation"]["credential"] == {"promoted_to": 3, "removed": [1], "after": [0, 2, 3]}


def test_check_mode_rotation_reports_and_changes_nothing(ctl1):
    ctl1.set_up()
    before = ctl1.snapshot()
    result = run(ctl1, state="rotated", return_keys=True, _ansible_check_mode=True)
    assert ctl1.snapshot() == before
    assert result["changed"] is True
    assert result["msg"].startswith("fernet: would rotate, key 2 is the primary key")
    assert result["changes"] == ["fernet: write key 2", "fernet: write key 0", "credential: write key 2",
                                 "credential: write key 0"]  # fmt: skip
    assert result["repositories"]["fernet"]["indices"] == [0, 1, 2]
    assert result["key_material"]["fernet"]["2"] == ctl1.keys(ctl1.fernet)[0]


def test_check_mode_still_refuses_an_unsafe_rotation(ctl1):
    ctl1.lay_out(ctl1.fernet, {0: 60, 1: DAY, 2: DAY})
    assert refused(ctl1, state="rotated", repositories=["fernet"], _ansible_check_mode=True)["msg"].startswith(
        "Refusing to rotate the fernet keys"
    )


def test_a_repository_that_was_never_set_up_is_not_rotated(ctl1):
    ctl1.set_up()
    (ctl1.credential / "0").unlink()
    before = ctl1.snapshot()
    failure = refused(ctl1, state="rotated")
    assert "Refusing to rotate the credential keys" in failure["msg"] and "no staged key 0" in failure["msg"]
    assert ctl1.snapshot() == before, "the fernet keys were checked fine but must not rotate alone"


def test_a_broken_key_stops_the_rotation(ctl1):
    ctl1.set_up()
    (ctl1.fernet / "1").write_text("garbage")
    assert "key 1 in" in refused(ctl1, state="rotated")["msg"]


def test_a_rotation_needs_keystone_conf(ctl1):
    ctl1.set_up()
    ctl1.conf.unlink()
    assert "keystone.conf does not exist" in refused(ctl1, state="rotated")["msg"]


def test_an_unknown_owner_is_refused_before_anything_changes(ctl1):
    ctl1.set_up()
    before = ctl1.snapshot()
    assert "does not exist on this host" in refused(ctl1, state="rotated", owner="no-such-user-here")["msg"]
    assert ctl1.snapshot() == before


# --- state: present --------------------------------------------------------------------------------------------------


def test_present_creates_the_repositories_of_a_new_controller(ctl1, ctl2):
    ctl1.set_up()
    result = distribute(run(ctl1, return_keys=True), ctl2)
    assert result["changed"] is True
    assert "fernet: create the directory" in result["changes"]
    assert stat.S_IMODE(ctl2.fernet.stat().st_mode) == 0o700
    assert ctl2.keys(ctl2.credential) == ctl1.keys(ctl1.credential)


def test_present_again_changes_nothing(ctl1, ctl2):
    ctl1.set_up()
    source = run(ctl1, return_keys=True)
    distribute(source, ctl2)
    before = ctl2.snapshot()
    result = distribute(source, ctl2)
    assert result["changed"] is False
    assert result["changes"] == []
    assert ctl2.snapshot() == before
    # Without key_mtimes the times of unchanged files are left alone too.
    assert run(ctl2, state="present", key_material=source["key_material"])["changed"] is False


def test_present_writes_only_what_differs_and_removes_extra_keys(ctl1, ctl2):
    ctl1.lay_out(ctl1.fernet, {0: DAY, 2: 3 * DAY, 3: 2 * DAY})
    ctl1.lay_out(ctl1.credential, {0: DAY, 1: DAY})
    source = run(ctl1, return_keys=True)
    distribute(source, ctl2)
    (ctl2.fernet / "0").write_text(fk.generate_key())
    (ctl2.fernet / "3").chmod(0o640)
    (ctl2.fernet / "1").write_text(fk.generate_key())
    (ctl2.fernet / "1").chmod(0o600)

    result = distribute(source, ctl2)

    assert result["changes"] == ["fernet: set owner, mode or time of key 3", "fernet: write key 0",
                                 "fernet: remove key 1"]  # fmt: skip
    assert ctl2.keys(ctl2.fernet) == ctl1.keys(ctl1.fernet)
    assert stat.S_IMODE((ctl2.fernet / "3").stat().st_mode) == 0o600


def test_present_gives_the_keys_of_a_role_copy_their_original_times(ctl1, ctl2):
    # roles/keystone copies the keys with ansible.builtin.copy: same content, the time of the copy.
    ctl1.set_up(days_ago=3)
    source = run(ctl1, return_keys=True)
    run(ctl2, state="present", key_material=source["key_material"])
    assert abs((ctl2.fernet / "1").stat().st_mtime - time.time()) < 60

    result = distribute(source, ctl2, repositories=["fernet"])

    assert result["changes"] == ["fernet: set owner, mode or time of key 1", "fernet: set owner, mode or time of key 0"]
    assert run(ctl2)["key_mtimes"]["fernet"] == source["key_mtimes"]["fernet"]
    assert distribute(source, ctl2, repositories=["fernet"])["changed"] is False


def test_present_refuses_key_mtimes_that_are_not_times(ctl1, ctl2):
    ctl1.set_up()
    source = run(ctl1, return_keys=True)
    failure = refused(ctl2, state="present", key_material=source["key_material"],
                      key_mtimes={"fernet": {"0": "yesterday"}})  # fmt: skip
    assert "key_mtimes.fernet[0] = 'yesterday' is not a time in seconds" in failure["msg"]
    assert not ctl2.fernet.exists()


def test_a_file_where_the_repository_belongs_is_refused(ctl2):
    ctl2.fernet.write_text("")
    assert "is not a directory" in refused(ctl2)["msg"]


def test_check_mode_present_reports_and_changes_nothing(ctl1, ctl2):
    ctl1.set_up()
    ctl2.set_up()
    source = run(ctl1, return_keys=True)
    before = ctl2.snapshot()
    # ctl2's own keys would be lost: this test is about check mode, so force past that refusal.
    result = distribute(source, ctl2, force=True, _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["msg"].startswith("Would change: fernet: write key 1")
    assert ctl2.snapshot() == before


def test_present_refuses_keys_without_this_hosts_primary_key(ctl1, ctl2):
    ctl1.set_up(days_ago=3)
    stale = run(ctl1, return_keys=True)
    distribute(stale, ctl2)
    # One rotation on ctl2 alone is harmless (its new primary key is ctl1's staged key); after a second one ctl2
    # signs with a key that ctl1 never had.
    run(ctl2, state="rotated", repositories=["fernet"])
    assert distribute(stale, ctl2, _ansible_check_mode=True)["changed"] is True
    run(ctl2, state="rotated", repositories=["fernet"], force=True)
    before = ctl2.snapshot()

    failure = refused(ctl2, state="present", key_material=stale["key_material"])

    assert failure["msg"].startswith("Refusing to write the fernet keys: they do not hold this host's primary key 3")
    assert ctl2.snapshot() == before
    assert distribute(stale, ctl2, force=True)["changed"] is True
    assert ctl2.keys(ctl2.fernet) == ctl1.keys(ctl1.fernet)


def test_present_needs_the_keys_of_every_repository(ctl1, ctl2):
    ctl1.set_up()
    source = run(ctl1, return_keys=True, repositories=["fernet"])
    failure = refused(ctl2, state="present", key_material=source["key_material"])
    assert "key_material.credential is missing" in failure["msg"]
    assert not ctl2.fernet.exists()
    assert distribute(source, ctl2, repositories=["fernet"])["changed"] is True


def test_present_refuses_a_malformed_key_without_showing_it(ctl2):
    secret = "typo" + fk.generate_key()[4:-1]
    material = {"fernet": {"0": fk.generate_key(), "1": secret}, "credential": {"0": fk.generate_key()}}
    failure = refused(ctl2, state="present", key_material=material)
    assert "key_material.fernet[1] is not a Fernet key" in failure["msg"]
    assert secret not in repr(failure)
    assert not ctl2.fernet.exists()


def test_key_material_is_no_log_and_never_returned_by_present(ctl1, ctl2):
    assert keystone_keys.ARGUMENT_SPEC["key_material"]["no_log"] is True
    ctl1.set_up()
    source = run(ctl1, return_keys=True)
    result = distribute(source, ctl2)
    for keys in source["key_material"].values():
        for key in keys.values():
            assert key not in repr(result)
    assert re.fullmatch(r"[0-9a-f]{64}", result["repositories"]["fernet"]["checksums"]["0"])

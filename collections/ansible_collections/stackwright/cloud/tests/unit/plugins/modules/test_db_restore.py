# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.db_restore against sets that db_backup wrote on a simulated MariaDB host."""

import copy
import gzip
import hashlib
import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import db_backup, db_restore
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from ansible_collections.stackwright.cloud.tests.unit.plugins.modules.db_fake import (
    AWKWARD_VALUE,
    SERVICE_DATABASES,
    MariaDBHost,
)

START = datetime(2026, 5, 9, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def host(monkeypatch):
    fake = MariaDBHost()
    patch_module(monkeypatch, fake, bin_dir="/usr/bin")
    return fake


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "backups"


def make_set(monkeypatch, host, dest, when=START, **args):
    """A set written by db_backup itself; the host's command log starts empty afterwards."""
    monkeypatch.setattr(db_backup, "utc_now", lambda: when)
    args.setdefault("databases", SERVICE_DATABASES)
    with patch_module_args({"dest": str(dest), **args}), pytest.raises(Exited) as caught:
        db_backup.main()
    host.calls.clear()
    host.option_files.clear()
    return dest / caught.value.result["name"]


@pytest.fixture
def backup(monkeypatch, host, dest):
    return make_set(monkeypatch, host, dest)


def run_module(**args):
    with patch_module_args(args), pytest.raises(Exited) as caught:
        db_restore.main()
    return caught.value.result


def fail_module(**args):
    with patch_module_args(args), pytest.raises(Failed) as caught:
        db_restore.main()
    return caught.value.result


def flip_a_byte(path):
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def rewrite_manifest(set_dir, change):
    manifest = json.loads((set_dir / "manifest.json").read_text())
    change(manifest)
    (set_dir / "manifest.json").write_text(json.dumps(manifest))


# --- restores ----------------------------------------------------------------------------------------------------


def test_restore_brings_every_database_back(host, backup):
    original = copy.deepcopy(host.tables)
    for db in SERVICE_DATABASES:
        host.tables[db] = {"items": ["(1,'changed after the backup')"], "new_table": []}

    result = run_module(path=str(backup))

    assert result["changed"] is True
    assert result["restored"] == SERVICE_DATABASES
    assert result["path"] == str(backup)
    assert result["name"] == backup.name
    assert host.tables == original


def test_each_database_is_replayed_from_its_verified_file(host, backup):
    run_module(path=str(backup))

    assert [argv[-1] for argv in host.sources()] == [
        f"--execute=source {host.sourced[db]['path']}" for db in SERVICE_DATABASES
    ]
    for db in SERVICE_DATABASES:
        sourced = host.sourced[db]
        assert sourced["mode"] == 0o600
        assert sourced["text"] == gzip.decompress((backup / f"{db}.sql.gz").read_bytes()).decode()
        # The unpacked SQL is removed with its private directory.
        assert not os.path.exists(os.path.dirname(sourced["path"]))
    assert [p.name for p in backup.parent.iterdir()] == [backup.name]


def test_restore_a_chosen_subset_in_the_order_of_the_set(host, backup):
    result = run_module(path=str(backup), databases=["nova_cell0", "nova", "nova_api"])
    assert result["restored"] == ["nova", "nova_api", "nova_cell0"]
    assert sorted(host.sourced) == ["nova", "nova_api", "nova_cell0"]


def test_latest_is_the_newest_complete_set(monkeypatch, host, dest):
    make_set(monkeypatch, host, dest, when=START, databases=["glance"])
    newest = make_set(monkeypatch, host, dest, when=START + timedelta(days=1), databases=["keystone"])
    # Newer names that are not complete sets do not count.
    (dest / ".partial-mariadb-20260601T000000Z-x1y2").mkdir()
    (dest / "mariadb-20260602T000000Z").mkdir()

    result = run_module(path=str(dest / "latest"))

    assert result["path"] == str(newest)
    assert result["restored"] == ["keystone"]


def test_latest_in_a_directory_without_sets_is_refused(host, dest):
    dest.mkdir()
    result = fail_module(path=str(dest / "latest"))
    assert "holds no complete backup set" in result["msg"]
    assert host.calls == []


def test_the_password_never_reaches_a_command_line(host, backup):
    run_module(path=str(backup), login_user="admin", login_password=AWKWARD_VALUE)
    assert host.option_files and all(f["mode"] == 0o600 for f in host.option_files)
    assert all(not os.path.exists(f["path"]) for f in host.option_files)


# --- refusals before anything is touched -------------------------------------------------------------------------


def test_a_corrupted_file_is_refused_before_any_command(host, backup):
    flip_a_byte(backup / "nova_api.sql.gz")

    result = fail_module(path=str(backup))

    assert result["msg"].startswith(f"Refusing to restore {backup}: the backup set does not verify")
    assert "nova_api.sql.gz: sha256" in result["msg"]
    assert result["msg"].endswith("Nothing was changed.")
    assert result["restored"] == []
    assert host.calls == []


def test_a_corrupted_file_is_refused_even_when_only_other_databases_are_chosen(host, backup):
    flip_a_byte(backup / "nova_api.sql.gz")
    fail_module(path=str(backup), databases=["glance"])
    assert host.calls == []


def test_a_truncated_file_is_refused(host, backup):
    path = backup / "glance.sql.gz"
    path.write_bytes(path.read_bytes()[:-10])
    result = fail_module(path=str(backup))
    assert "glance.sql.gz has" in result["msg"] and "the manifest says" in result["msg"]
    assert host.calls == []


def test_a_missing_file_is_refused(host, backup):
    (backup / "placement.sql.gz").unlink()
    result = fail_module(path=str(backup))
    assert "placement.sql.gz is missing" in result["problems"]
    assert host.calls == []


def test_a_symlink_in_place_of_a_file_is_refused(host, backup, tmp_path):
    # Same bytes, so size and sha256 match: only the file type gives it away.
    elsewhere = tmp_path / "elsewhere.sql.gz"
    elsewhere.write_bytes((backup / "glance.sql.gz").read_bytes())
    (backup / "glance.sql.gz").unlink()
    (backup / "glance.sql.gz").symlink_to(elsewhere)
    result = fail_module(path=str(backup))
    assert "glance.sql.gz is not a regular file" in result["problems"]
    assert host.calls == []


def test_a_manifest_edited_to_match_a_corrupted_file_is_refused(host, backup):
    flip_a_byte(backup / "keystone.sql.gz")
    new_digest = hashlib.sha256((backup / "keystone.sql.gz").read_bytes()).hexdigest()

    def match(manifest):
        for entry in manifest["files"]:
            if entry["name"] == "keystone.sql.gz":
                entry["sha256"] = new_digest

    rewrite_manifest(backup, match)
    result = fail_module(path=str(backup))
    assert any("manifest.json does not match its sha256 in SHA256SUMS" in p for p in result["problems"])
    assert host.calls == []


def test_a_manifest_naming_a_file_outside_the_set_is_refused(host, backup):
    def escape(manifest):
        manifest["files"][0]["name"] = "../../etc/shadow"

    rewrite_manifest(backup, escape)
    result = fail_module(path=str(backup))
    assert any("invalid name '../../etc/shadow'" in p for p in result["problems"])
    assert host.calls == []


@pytest.mark.parametrize("content", ["not json", '{"format": "something-else"}',
                                     '{"format": "stackwright-mariadb-backup", "format_version": 2}'])  # fmt: skip
def test_a_foreign_or_unreadable_manifest_is_refused(host, backup, content):
    (backup / "manifest.json").write_text(content)
    fail_module(path=str(backup))
    assert host.calls == []


def test_a_directory_that_is_not_a_set_is_refused(host, dest, backup):
    result = fail_module(path=str(dest))
    assert "manifest.json does not exist" in result["msg"]
    assert host.calls == []


def test_a_database_not_in_the_set_is_refused(host, backup):
    result = fail_module(path=str(backup), databases=["nova", "cinder"])
    assert result["msg"].startswith("Refusing to restore: cinder is not in the backup set")
    assert "glance, keystone" in result["msg"]
    assert host.calls == []


def test_a_system_database_is_refused(host, backup):
    result = fail_module(path=str(backup), databases=["mysql"])
    assert "system database(s) mysql" in result["msg"]
    assert host.calls == []


def test_a_file_changed_after_verification_is_caught_before_any_restore(host, backup, monkeypatch):
    real_verify = db_restore.verify_set

    def verify_then_replace(path):
        verified = real_verify(path)
        # Valid gzip, other SQL: only the second checksum can tell.
        (backup / "placement.sql.gz").write_bytes(gzip.compress(b"DROP DATABASE nova;\n"))
        return verified

    monkeypatch.setattr(db_restore, "verify_set", verify_then_replace)
    result = fail_module(path=str(backup))
    assert "placement.sql.gz changed after it was verified" in result["msg"]
    assert result["msg"].endswith("Nothing was changed.")
    assert host.sources() == []


@pytest.mark.parametrize(("state", "status"), [("Donor/Desynced", "Primary"), ("Synced", "non-Primary")])
def test_a_galera_node_that_is_not_synced_is_refused(host, backup, state, status):
    host.state, host.cluster_status = state, status
    result = fail_module(path=str(backup))
    assert result["msg"].startswith("Refusing to restore on this node")
    assert host.sources() == []


# --- failures part way -------------------------------------------------------------------------------------------


def test_a_failed_database_stops_the_restore_and_says_where(host, backup):
    host.restore_fail = "nova_api"
    result = fail_module(path=str(backup))
    assert result["changed"] is True
    assert result["restored"] == ["glance", "keystone", "neutron", "nova"]
    assert result["failed"] == "nova_api"
    assert result["pending"] == ["nova_cell0", "placement"]
    assert "ERROR 1064" in result["msg"]
    assert sorted(host.sourced) == ["glance", "keystone", "neutron", "nova", "nova_api"]
    assert [p.name for p in backup.parent.iterdir()] == [backup.name]


# --- check mode --------------------------------------------------------------------------------------------------


def test_check_mode_verifies_and_runs_nothing(host, backup):
    result = run_module(path=str(backup), databases=["glance"], _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["databases"] == ["glance"]
    assert result["restored"] == []
    assert result["msg"].startswith(f"The backup set {backup} verifies (7 file(s), checksums match). Would restore")
    assert host.calls == []
    assert [p.name for p in backup.parent.iterdir()] == [backup.name]


def test_check_mode_refuses_a_set_that_does_not_verify(host, backup):
    flip_a_byte(backup / "glance.sql.gz")
    result = fail_module(path=str(backup), _ansible_check_mode=True)
    assert "does not verify" in result["msg"]


def test_a_plain_sql_set_restores_too(monkeypatch, host, dest):
    backup = make_set(monkeypatch, host, dest, databases=["keystone"], compression="none")
    host.tables["keystone"] = {}
    result = run_module(path=str(backup))
    assert result["restored"] == ["keystone"]
    assert "items" in host.tables["keystone"]

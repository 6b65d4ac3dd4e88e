# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.db_backup against a simulated MariaDB host that writes real dump files."""

import gzip
import hashlib
import json
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.module_utils import db_backup as utils
from ansible_collections.stackwright.cloud.plugins.modules import db_backup
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from ansible_collections.stackwright.cloud.tests.unit.plugins.modules.db_fake import (
    AWKWARD_VALUE,
    FOOTER,
    HEADER,
    SERVICE_DATABASES,
    UUID,
    VERSION,
    MariaDBHost,
)

START = datetime(2026, 5, 9, 12, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self):
        self.now = START

    def __call__(self):
        return self.now


@pytest.fixture
def host(monkeypatch):
    fake = MariaDBHost()
    patch_module(monkeypatch, fake, bin_dir="/usr/bin")
    return fake


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(db_backup, "utc_now", fake)
    return fake


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "backups"


def run_module(dest, **args):
    args.setdefault("dest", str(dest))
    with patch_module_args(args), pytest.raises(Exited) as caught:
        db_backup.main()
    return caught.value.result


def fail_module(dest, **args):
    args.setdefault("dest", str(dest))
    with patch_module_args(args), pytest.raises(Failed) as caught:
        db_backup.main()
    return caught.value.result


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def complete_sets(dest):
    return sorted(p.name for p in dest.iterdir() if p.name.startswith("mariadb-"))


def backup_days(dest, clock, days, **args):
    """One backup per day, as a daily timer would make them."""
    results = []
    for day in days:
        clock.now = START + timedelta(days=day)
        results.append(run_module(dest, **args))
    return results


# --- one backup set ----------------------------------------------------------------------------------------------


def test_one_run_writes_one_complete_set(host, clock, dest):
    result = run_module(dest, databases=SERVICE_DATABASES)

    assert result["changed"] is True
    assert result["name"] == "mariadb-20260509T120000Z"
    assert result["path"] == str(dest / "mariadb-20260509T120000Z")
    assert complete_sets(dest) == ["mariadb-20260509T120000Z"]
    set_dir = dest / result["name"]
    names = sorted(p.name for p in set_dir.iterdir())
    assert names == sorted([f"{db}.sql.gz" for db in SERVICE_DATABASES] + ["manifest.json", "SHA256SUMS"])
    assert result["databases"] == SERVICE_DATABASES
    assert result["removed"] == []
    assert result["kept"] == ["mariadb-20260509T120000Z"]


def test_all_databases_come_from_one_consistent_dump(host, clock, dest):
    run_module(dest, databases=SERVICE_DATABASES)

    dumps = host.ran("mariadb-dump")
    assert len(dumps) == 1
    argv = dumps[0]
    assert "--single-transaction" in argv
    assert {"--routines", "--triggers", "--events", "--add-drop-database"} <= set(argv)
    assert argv[argv.index("--databases") + 1 :] == SERVICE_DATABASES


def test_files_are_private_and_the_set_directory_is_0700(host, clock, dest):
    result = run_module(dest, databases=SERVICE_DATABASES)
    set_dir = dest / result["name"]
    assert mode(dest) == 0o700
    assert mode(set_dir) == 0o700
    assert {mode(p) for p in set_dir.iterdir()} == {0o600}


def test_manifest_records_databases_server_galera_and_checksums(host, clock, dest):
    result = run_module(dest, databases=SERVICE_DATABASES)
    set_dir = dest / result["name"]
    manifest = json.loads((set_dir / "manifest.json").read_text())

    assert manifest == result["manifest"]
    assert manifest["format"] == "stackwright-mariadb-backup"
    assert manifest["format_version"] == 1
    assert manifest["consistent"] is True
    assert manifest["databases"] == SERVICE_DATABASES
    assert manifest["server"] == {"version": VERSION, "gtid_current_pos": "0-1-1842"}
    assert manifest["galera"] == {"cluster_state_uuid": UUID, "last_committed": 18342, "local_state": "Synced",
                                  "cluster_status": "Primary"}  # fmt: skip
    assert manifest["created"] == "2026-05-09T12:00:00Z"
    assert "--single-transaction" in manifest["dump_options"]
    assert not any("defaults-file" in o or "result-file" in o for o in manifest["dump_options"])
    for entry in manifest["files"]:
        data = (set_dir / entry["name"]).read_bytes()
        assert entry["size"] == len(data)
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["sql_size"] == len(gzip.decompress(data))


def test_sha256sums_checks_every_file_and_the_manifest(host, clock, dest):
    result = run_module(dest, databases=SERVICE_DATABASES)
    set_dir = dest / result["name"]
    lines = (set_dir / "SHA256SUMS").read_text().splitlines()
    listed = dict(reversed(line.split("  ", 1)) for line in lines)
    assert set(listed) == {f"{db}.sql.gz" for db in SERVICE_DATABASES} | {"manifest.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((set_dir / name).read_bytes()).hexdigest() == digest


def test_each_file_restores_its_database_alone(host, clock, dest):
    result = run_module(dest, databases=SERVICE_DATABASES)
    set_dir = dest / result["name"]
    for db in SERVICE_DATABASES:
        sql = gzip.decompress((set_dir / f"{db}.sql.gz").read_bytes()).decode()
        assert sql.startswith(HEADER)
        assert sql.endswith(FOOTER)
        assert f"DROP DATABASE IF EXISTS `{db}`" in sql
        assert set(line for line in sql.splitlines() if line.startswith("USE ")) == {f"USE `{db}`;"}
        assert host.tables[db]["items"][0] in sql
    # nova's views come in the dump's second pass; they stay with nova.
    nova = gzip.decompress((set_dir / "nova.sql.gz").read_bytes()).decode()
    assert nova.count("-- Current Database: `nova`") == 2
    assert "CREATE ALGORITHM=UNDEFINED VIEW `instance_summary`" in nova


def test_without_databases_every_non_system_database_is_backed_up(host, clock, dest):
    result = run_module(dest)
    assert result["databases"] == sorted(SERVICE_DATABASES)
    argv = host.ran("mariadb-dump")[0]
    assert not {"mysql", "sys", "performance_schema", "information_schema"} & set(argv)


def test_plain_sql_without_compression(host, clock, dest):
    result = run_module(dest, databases=["keystone"], compression="none")
    sql = (dest / result["name"] / "keystone.sql").read_text()
    assert sql.startswith(HEADER)
    assert result["manifest"]["compression"] == "none"


# --- credentials -------------------------------------------------------------------------------------------------


def test_the_password_goes_into_a_private_option_file_only(host, clock, dest):
    run_module(dest, databases=["glance"], login_user="backup", login_password=AWKWARD_VALUE)

    assert host.option_files, "the clients read the login from an option file"
    for option_file in host.option_files:
        assert option_file["mode"] == 0o600
        assert 'password = "pa\\"ss#wo\\\\rd \'s3cret"' in option_file["text"]
        assert 'user = "backup"' in option_file["text"]
        assert 'socket = "/run/mysqld/mysqld.sock"' in option_file["text"]
        assert not os.path.exists(option_file["path"]), "the option file is removed after the task"
    # run_command of the fake asserts that no argv holds the password.


def test_the_default_login_is_the_system_user_over_the_socket(host, clock, dest):
    run_module(dest, databases=["glance"])
    text = host.option_files[0]["text"]
    assert "user" not in text.split("[client]")[1]
    assert "password" not in text


def test_tcp_login_and_an_included_option_file(host, clock, dest, tmp_path):
    my_cnf = tmp_path / "my.cnf"
    my_cnf.write_text("[client]\nuser = other\n")
    run_module(dest, databases=["glance"], login_host="10.0.0.5", login_port=3307, config_file=str(my_cnf))
    text = host.option_files[0]["text"]
    assert text.index(f"!include {my_cnf}") < text.index("[client]")
    assert 'host = "10.0.0.5"' in text and "port = 3307" in text and "protocol = TCP" in text
    assert "socket" not in text


def test_a_missing_config_file_fails_before_any_command(host, clock, dest, tmp_path):
    result = fail_module(dest, config_file=str(tmp_path / "nope.cnf"))
    assert "does not exist" in result["msg"]
    assert host.calls == []


# --- retention ---------------------------------------------------------------------------------------------------


def test_retention_keeps_exactly_the_newest_complete_sets(host, clock, dest):
    backup_days(dest, clock, range(5), databases=["glance"], keep=0)
    assert len(complete_sets(dest)) == 5
    partial = dest / ".partial-mariadb-20260501T000000Z-abcd"
    partial.mkdir()
    broken = dest / "mariadb-20260502T000000Z"
    broken.mkdir()
    other = dest / "notes.txt"
    other.write_text("operator's own file\n")

    clock.now = START + timedelta(days=5)
    result = run_module(dest, databases=["glance"], keep=3)

    assert result["kept"] == ["mariadb-20260514T120000Z", "mariadb-20260513T120000Z", "mariadb-20260512T120000Z"]
    assert complete_sets(dest) == sorted([*result["kept"], broken.name])
    assert result["removed"] == [str(dest / f"mariadb-202605{day:02d}T120000Z") for day in (11, 10, 9)]
    # Incomplete and foreign entries are never counted and never deleted.
    assert partial.is_dir() and broken.is_dir() and other.is_file()
    assert sorted(result["incomplete"]) == sorted([str(partial), str(broken)])


def test_retention_never_deletes_the_set_just_made(host, clock, dest):
    # Sets named later than now (the clock went back): keep=1 still keeps the new one.
    clock.now = START + timedelta(days=30)
    run_module(dest, databases=["glance"], keep=0)
    clock.now = START
    result = run_module(dest, databases=["glance"], keep=1)
    assert complete_sets(dest) == [result["name"]]
    assert result["removed"] == [str(dest / "mariadb-20260608T120000Z")]


def test_keep_zero_keeps_every_set(host, clock, dest):
    results = backup_days(dest, clock, range(4), databases=["glance"], keep=0)
    assert results[-1]["removed"] == []
    assert len(complete_sets(dest)) == 4


def test_two_runs_in_the_same_second_get_two_sets(host, clock, dest):
    first = run_module(dest, databases=["glance"])
    second = run_module(dest, databases=["glance"])
    assert (first["name"], second["name"]) == ("mariadb-20260509T120000Z", "mariadb-20260509T120000Z-1")
    assert complete_sets(dest) == [first["name"], second["name"]]


def test_a_negative_keep_is_refused(host, clock, dest):
    assert "keep is -1" in fail_module(dest, keep=-1)["msg"]


# --- atomic completion and failures ------------------------------------------------------------------------------


def test_a_set_in_progress_never_looks_complete(host, clock, dest):
    seen = {}

    def look():
        seen["entries"] = sorted(p.name for p in dest.iterdir())
        seen["complete"] = utils.scan_sets(str(dest))[0]

    host.during_dump = look
    run_module(dest, databases=["glance"])
    assert len(seen["entries"]) == 1 and seen["entries"][0].startswith(".partial-mariadb-20260509T120000Z-")
    assert seen["complete"] == []


def test_a_failed_dump_leaves_nothing_and_keeps_the_old_sets(host, clock, dest):
    backup_days(dest, clock, range(3), databases=["glance"], keep=0)
    before = complete_sets(dest)
    host.dump_rc = 2
    clock.now = START + timedelta(days=3)

    result = fail_module(dest, databases=["glance"], keep=1)

    assert "mariadb-dump exited with 2" in result["msg"]
    assert "Access denied" in result["msg"]
    assert sorted(p.name for p in dest.iterdir()) == before


def test_a_truncated_dump_is_refused(host, clock, dest):
    host.dump_truncated = True
    result = fail_module(dest, databases=SERVICE_DATABASES)
    assert "did not finish" in result["msg"]
    assert list(dest.iterdir()) == []


def test_a_missing_database_fails_before_the_dump(host, clock, dest):
    result = fail_module(dest, databases=["glance", "cinder"])
    assert "The server has no database cinder" in result["msg"]
    assert host.ran("mariadb-dump") == []
    assert not dest.exists()


def test_skip_missing_backs_up_the_others(host, clock, dest):
    result = run_module(dest, databases=["glance", "cinder"], skip_missing=True)
    assert result["databases"] == ["glance"]
    assert result["skipped"] == ["cinder"]
    assert result["manifest"]["databases"] == ["glance"]


def test_skip_missing_with_nothing_left_writes_nothing(host, clock, dest):
    result = run_module(dest, databases=["cinder"], skip_missing=True)
    assert result["changed"] is False
    assert result["skipped"] == ["cinder"]
    assert host.ran("mariadb-dump") == []
    assert not dest.exists()


def test_a_system_database_is_refused(host, clock, dest):
    result = fail_module(dest, databases=["nova", "mysql"])
    assert result["msg"].startswith("mysql is a system database")
    assert host.ran("mariadb-dump") == []


def test_an_invalid_database_name_is_refused(host, clock, dest):
    result = fail_module(dest, databases=["nova; DROP"])
    assert "Unsupported database name" in result["msg"]
    assert host.ran("mariadb-dump") == []


@pytest.mark.parametrize(("state", "status"), [("Donor/Desynced", "Primary"), ("Synced", "non-Primary"),
                                               ("Joining", "Primary")])  # fmt: skip
def test_a_galera_node_that_is_not_synced_is_refused(host, clock, dest, state, status):
    host.state, host.cluster_status = state, status
    result = fail_module(dest, databases=SERVICE_DATABASES)
    assert result["msg"].startswith("Refusing to back up on this node")
    assert host.ran("mariadb-dump") == []
    assert not dest.exists()


def test_a_server_without_galera_is_backed_up(host, clock, dest):
    host.wsrep_on = False
    result = run_module(dest, databases=["glance"])
    assert result["manifest"]["galera"] is None


# --- check mode --------------------------------------------------------------------------------------------------


def test_check_mode_reports_and_writes_nothing(host, clock, dest):
    result = run_module(dest, databases=SERVICE_DATABASES, _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["path"] == str(dest / "mariadb-20260509T120000Z")
    assert result["msg"].startswith("Would back up 7 database(s)")
    assert host.ran("mariadb-dump") == []
    assert not dest.exists()


def test_check_mode_reports_what_retention_would_delete(host, clock, dest):
    backup_days(dest, clock, range(4), databases=["glance"], keep=0)
    before = sorted(os.listdir(dest))
    clock.now = START + timedelta(days=4)

    result = run_module(dest, databases=["glance"], keep=2, _ansible_check_mode=True)

    assert result["removed"] == [str(dest / f"mariadb-202605{day:02d}T120000Z") for day in (11, 10, 9)]
    assert sorted(os.listdir(dest)) == before

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The backup set logic shared by db_backup and db_restore (module_utils/db_backup.py): names, retention, option
files, server state, the dump splitter."""

import io
from datetime import UTC, datetime

import pytest
from ansible_collections.stackwright.cloud.plugins.module_utils import db_backup as utils
from ansible_collections.stackwright.cloud.tests.unit.plugins.modules.db_fake import (
    FOOTER,
    HEADER,
    database_section,
    render_dump,
    sample_rows,
)

# --- names and retention -----------------------------------------------------------------------------------------


def test_set_names_sort_by_time_then_counter():
    moment = datetime(2026, 5, 9, 12, 0, 0, tzinfo=UTC)
    assert utils.new_set_name(moment) == "mariadb-20260509T120000Z"
    assert utils.new_set_name(moment, ["mariadb-20260509T120000Z"]) == "mariadb-20260509T120000Z-1"
    names = ["mariadb-20260509T120000Z-10", "mariadb-20260509T120000Z-2", "mariadb-20260508T235959Z"]
    assert sorted(names, key=utils.set_sort_key) == [
        "mariadb-20260508T235959Z",
        "mariadb-20260509T120000Z-2",
        "mariadb-20260509T120000Z-10",
    ]
    for other in ("latest", "mariadb-2026", ".partial-mariadb-20260509T120000Z-x", "mariadb-20260509T120000Z.old"):
        assert utils.set_sort_key(other) is None


def sets(*names):
    return [{"name": name, "path": f"/b/{name}"} for name in names]


@pytest.mark.parametrize(
    ("keep", "current", "removed"),
    [
        (3, "s5", ["s2", "s1"]),
        (1, "s5", ["s4", "s3", "s2", "s1"]),
        (5, "s5", []),
        (0, "s5", []),
        # The clock went back: the new set is kept whatever its name.
        (1, "s1", ["s5", "s4", "s3", "s2"]),
        (2, "s3", ["s4", "s2", "s1"]),
        # Before it exists (check mode) the new set still takes one place.
        (3, None, ["s3", "s2", "s1"]),
    ],
)
def test_retention_keeps_the_newest_and_the_current_set(keep, current, removed):
    complete = sets("s5", "s4", "s3", "s2", "s1")
    assert [s["name"] for s in utils.choose_removals(complete, keep, current)] == removed


# --- option files ------------------------------------------------------------------------------------------------


def test_option_values_are_quoted_and_escaped():
    assert utils.option_value("plain") == '"plain"'
    assert utils.option_value("a\"b#c\\d 'e") == '"a\\"b#c\\\\d \'e"'


def test_option_values_with_line_breaks_are_refused():
    with pytest.raises(utils.BackupError, match="line breaks"):
        utils.option_value("one\ntwo")


def test_option_file_socket_or_tcp():
    socket_file = utils.option_file_text(user="root", socket="/run/mysqld/mysqld.sock")
    assert socket_file.splitlines()[1:] == ["[client]", 'user = "root"', 'socket = "/run/mysqld/mysqld.sock"']
    tcp = utils.option_file_text(user="u", host="db", port=3307, socket="/run/mysqld/mysqld.sock")
    assert tcp.splitlines()[1:] == ["[client]", 'user = "u"', 'host = "db"', "port = 3307", "protocol = TCP"]


# --- server state ------------------------------------------------------------------------------------------------

INFO = """\
version\t11.8.3-MariaDB-0+deb13u1
wsrep_on\tON
gtid_current_pos\t0-1-7
wsrep_cluster_state_uuid\t6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11
wsrep_cluster_status\tPrimary
wsrep_last_committed\t99
wsrep_local_state_comment\tSynced
database\tglance
database\tmysql
"""


def test_server_info_is_parsed():
    info = utils.parse_server_info(INFO)
    assert info["version"] == "11.8.3-MariaDB-0+deb13u1"
    assert info["wsrep_on"] is True
    assert info["wsrep_last_committed"] == 99
    assert info["databases"] == ["glance", "mysql"]
    assert utils.galera_refusal(info) is None


def test_a_single_server_needs_no_galera_state():
    info = utils.parse_server_info("version\t11.8.3-MariaDB\nwsrep_on\tOFF\n")
    assert info["wsrep_on"] is False
    assert utils.galera_refusal(info) is None
    assert utils.galera_state(info) is None


def test_a_desynced_node_is_refused():
    info = utils.parse_server_info(INFO.replace("Synced", "Donor/Desynced"))
    assert "Donor/Desynced" in utils.galera_refusal(info)


# --- splitting the dump ------------------------------------------------------------------------------------------


class Sink(io.BytesIO):
    def close(self):
        self.kept = self.getvalue()
        super().close()


def split(tmp_path, text, databases):
    raw = tmp_path / "dump.sql"
    raw.write_text(text)
    sinks = {}

    def open_part(db):
        sinks[db] = Sink()
        return sinks[db]

    sizes = utils.split_dump(str(raw), databases, open_part)
    return {db: sink.kept.decode() for db, sink in sinks.items()}, sizes


TABLES = {db: {"t": sample_rows(db, count=3)} for db in ("alpha", "beta", "gamma")}


def test_the_dump_splits_into_self_contained_parts(tmp_path):
    parts, sizes = split(tmp_path, render_dump(TABLES, ["alpha", "beta"], {"alpha": "v"}), ["alpha", "beta"])
    assert sorted(parts) == ["alpha", "beta"]
    for db, text in parts.items():
        assert text.startswith(HEADER) and text.endswith(FOOTER)
        assert sizes[db] == len(text.encode())
    assert database_section("beta", TABLES["beta"]).strip() in parts["beta"]
    assert "`beta`" not in parts["alpha"]
    # alpha's view part (the dump's second pass) stays with alpha.
    assert parts["alpha"].index("CREATE ALGORITHM=UNDEFINED VIEW `v`") < parts["alpha"].index(FOOTER)


def test_a_marker_inside_a_value_does_not_split(tmp_path):
    parts, _sizes = split(tmp_path, render_dump(TABLES, ["alpha"]), ["alpha"])
    assert "-- Current Database: `mysql` inside a value" in parts["alpha"]


def test_a_dump_without_its_completion_line_is_refused(tmp_path):
    text = render_dump(TABLES, ["alpha"]).replace("-- Dump completed on 2026-05-09 12:00:01\n", "")
    with pytest.raises(utils.BackupError, match="did not finish"):
        split(tmp_path, text, ["alpha"])


def test_a_dump_without_its_footer_is_refused(tmp_path):
    text = render_dump(TABLES, ["alpha"]).replace("/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n", "")
    with pytest.raises(utils.BackupError, match="no footer"):
        split(tmp_path, text, ["alpha"])


def test_a_database_that_was_not_asked_for_is_refused(tmp_path):
    with pytest.raises(utils.BackupError, match="gamma, which was not asked for"):
        split(tmp_path, render_dump(TABLES, ["alpha", "gamma"]), ["alpha"])


def test_a_database_missing_from_the_dump_is_refused(tmp_path):
    with pytest.raises(utils.BackupError, match="no part for database"):
        split(tmp_path, render_dump(TABLES, ["alpha"]), ["alpha", "beta"])


def test_a_big_dump_finds_its_footer_in_the_tail(tmp_path):
    big = {"alpha": {"t": sample_rows("alpha", count=5000)}}
    parts, _sizes = split(tmp_path, render_dump(big, ["alpha"]), ["alpha"])
    assert len(parts["alpha"]) > 2 * 64 * 1024
    assert parts["alpha"].endswith(FOOTER)


# --- finding sets ------------------------------------------------------------------------------------------------


def test_an_existing_latest_entry_is_taken_as_it_is(tmp_path):
    target = tmp_path / "mariadb-20260101T000000Z"
    target.mkdir()
    (tmp_path / "latest").symlink_to(target)
    assert utils.resolve_set_path(str(tmp_path / "latest")) == str(tmp_path / "latest")


def test_scan_ignores_what_is_not_a_set(tmp_path):
    (tmp_path / "notes").mkdir()
    (tmp_path / "mariadb-20260101T000000Z").write_text("a file, not a set")
    complete, other = utils.scan_sets(str(tmp_path))
    assert complete == []
    assert other == [str(tmp_path / "mariadb-20260101T000000Z")]
    assert utils.scan_sets(str(tmp_path / "absent")) == ([], [])

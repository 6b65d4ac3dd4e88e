# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""A simulated MariaDB host for the db_backup and db_restore tests: it answers the info query, writes real dump
files the way mariadb-dump 11.8 lays them out, and replays restored SQL into its own tables."""

import hashlib
import os
import re
import stat

UUID = "6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11"
VERSION = "11.8.3-MariaDB-0+deb13u1"
# A login password with every character an option file treats specially; never on a command line.
AWKWARD_VALUE = "pa\"ss#wo\\rd 's3cret"
SERVICE_DATABASES = ["glance", "keystone", "neutron", "nova", "nova_api", "nova_cell0", "placement"]
SYSTEM_DATABASES = ["information_schema", "mysql", "performance_schema", "sys"]

HEADER = """\
/*M!999999\\- enable the sandbox mode */
-- MariaDB dump 10.19-11.8.3-MariaDB, for debian-linux-gnu (x86_64)
--
-- Host: localhost    Database:
-- ------------------------------------------------------
-- Server version\t11.8.3-MariaDB-0+deb13u1

/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*!40101 SET @OLD_CHARACTER_SET_RESULTS=@@CHARACTER_SET_RESULTS */;
/*!40101 SET @OLD_COLLATION_CONNECTION=@@COLLATION_CONNECTION */;
/*!40101 SET NAMES utf8mb4 */;
/*!40103 SET @OLD_TIME_ZONE=@@TIME_ZONE */;
/*!40103 SET TIME_ZONE='+00:00' */;
/*!40014 SET @OLD_UNIQUE_CHECKS=@@UNIQUE_CHECKS, UNIQUE_CHECKS=0 */;
/*!40014 SET @OLD_FOREIGN_KEY_CHECKS=@@FOREIGN_KEY_CHECKS, FOREIGN_KEY_CHECKS=0 */;
/*!40101 SET @OLD_SQL_MODE=@@SQL_MODE, SQL_MODE='NO_AUTO_VALUE_ON_ZERO' */;
/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;
"""

FOOTER = """\
/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;

/*!40101 SET SQL_MODE=@OLD_SQL_MODE */;
/*!40014 SET FOREIGN_KEY_CHECKS=@OLD_FOREIGN_KEY_CHECKS */;
/*!40014 SET UNIQUE_CHECKS=@OLD_UNIQUE_CHECKS */;
/*!40101 SET CHARACTER_SET_CLIENT=@OLD_CHARACTER_SET_CLIENT */;
/*!40101 SET CHARACTER_SET_RESULTS=@OLD_CHARACTER_SET_RESULTS */;
/*!40101 SET COLLATION_CONNECTION=@OLD_COLLATION_CONNECTION */;
/*M!100616 SET NOTE_VERBOSITY=@OLD_NOTE_VERBOSITY */;

-- Dump completed on 2026-05-09 12:00:01
"""

_INSERT_RE = re.compile(r"^INSERT INTO `(\w+)` VALUES (.*);$")


def sample_rows(seed, count=40):
    """Rows of hex noise (gzip has something to do) and one value that looks like a dump marker."""
    rows = [f"({i},'{hashlib.sha256(f'{seed}-{i}'.encode()).hexdigest()}')" for i in range(count)]
    rows.append(f"({count},'-- Current Database: `mysql` inside a value')")
    return rows


def database_section(name, tables):
    out = [
        "",
        "--",
        f"-- Current Database: `{name}`",
        "--",
        "",
        f"/*!40000 DROP DATABASE IF EXISTS `{name}`*/;",
        "",
        f"CREATE DATABASE /*!32312 IF NOT EXISTS*/ `{name}` /*!40100 DEFAULT CHARACTER SET utf8mb4 COLLATE "
        "utf8mb4_general_ci */;",
        "",
        f"USE `{name}`;",
    ]
    for table, rows in tables.items():
        out += [
            "",
            "--",
            f"-- Table structure for table `{table}`",
            "--",
            "",
            f"DROP TABLE IF EXISTS `{table}`;",
            "/*!40101 SET @saved_cs_client     = @@character_set_client */;",
            "/*!40101 SET character_set_client = utf8mb4 */;",
            f"CREATE TABLE `{table}` (",
            "  `id` int(11) NOT NULL,",
            "  `value` text DEFAULT NULL,",
            "  PRIMARY KEY (`id`)",
            ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci;",
            "/*!40101 SET character_set_client = @saved_cs_client */;",
        ]
        if rows:
            out += [
                "",
                f"LOCK TABLES `{table}` WRITE;",
                f"/*!40000 ALTER TABLE `{table}` DISABLE KEYS */;",
                " ".join(("INSERT INTO", f"`{table}`", "VALUES", ",".join(rows))) + ";",
                f"/*!40000 ALTER TABLE `{table}` ENABLE KEYS */;",
                "UNLOCK TABLES;",
            ]
    return "\n".join(out) + "\n"


def view_section(name, view):
    # mariadb-dump writes views in a second pass, after every database, under a second marker.
    return (
        f"\n--\n-- Current Database: `{name}`\n--\n\nUSE `{name}`;\n\n--\n-- Final view structure for view `{view}`\n"
        f"--\n\n/*!50001 DROP VIEW IF EXISTS `{view}`*/;\n/*!50001 CREATE ALGORITHM=UNDEFINED VIEW `{view}` AS "
        f"select 1 AS `one` */;\n"
    )


def render_dump(tables_by_db, databases, views=None):
    views = views or {}
    text = HEADER + "".join(database_section(db, tables_by_db[db]) for db in databases)
    text += "".join(view_section(db, views[db]) for db in databases if db in views)
    return text + FOOTER


class MariaDBHost:
    """Answers db_backup's and db_restore's commands like a Debian 13 controller of a Galera cluster."""

    def __init__(self, databases=tuple(SERVICE_DATABASES)):
        self.tables = {db: {"items": sample_rows(f"{db}-items"), "empty_table": []} for db in databases}
        self.views = {"nova": "instance_summary"}
        self.state = "Synced"
        self.cluster_status = "Primary"
        self.wsrep_on = True
        self.dump_rc = 0
        self.dump_truncated = False
        self.restore_fail = None
        self.during_dump = None
        self.calls = []
        self.option_files = []
        self.sourced = {}

    # --- what the host answers --------------------------------------------------------------------------------

    def run_command(self, argv, **kwargs):
        assert isinstance(argv, list), "commands are argv lists, no shell"
        assert kwargs.get("expand_user_and_vars") is False, "arguments must reach the tools unexpanded"
        assert not any(AWKWARD_VALUE in arg or "s3cret" in arg for arg in argv), "a password on the command line"
        self.calls.append(argv)
        tool = os.path.basename(argv[0])
        assert argv[1].startswith("--defaults-file="), "--defaults-file must be the first option"
        self._read_option_file(argv[1].split("=", 1)[1])
        if tool == "mariadb-dump":
            return self._dump(argv)
        if tool == "mariadb":
            execute = next(arg for arg in argv if arg.startswith("--execute="))[len("--execute=") :]
            if execute.startswith("source "):
                return self._source(argv, execute[len("source ") :])
            return 0, self._info(), ""
        raise AssertionError(f"unexpected command {argv}")

    def _read_option_file(self, path):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        with open(path, encoding="utf-8") as handle:
            self.option_files.append({"path": path, "mode": mode, "text": handle.read()})

    def _info(self):
        lines = [f"version\t{VERSION}", f"wsrep_on\t{'ON' if self.wsrep_on else 'OFF'}", "gtid_current_pos\t0-1-1842"]
        if self.wsrep_on:
            lines += [
                f"wsrep_cluster_state_uuid\t{UUID}",
                f"wsrep_cluster_status\t{self.cluster_status}",
                "wsrep_last_committed\t18342",
                f"wsrep_local_state_comment\t{self.state}",
            ]
        lines += [f"database\t{db}" for db in sorted([*self.tables, *SYSTEM_DATABASES])]
        return "\n".join(lines) + "\n"

    def _dump(self, argv):
        result_file = next(arg for arg in argv if arg.startswith("--result-file="))[len("--result-file=") :]
        databases = argv[argv.index("--databases") + 1 :]
        assert all(db in self.tables for db in databases)
        text = render_dump(self.tables, databases, self.views)
        if self.dump_truncated:
            text = text[: len(text) // 2]
        with open(result_file, "w", encoding="utf-8") as out:
            out.write(text)
        if self.during_dump:
            self.during_dump()
        if self.dump_rc:
            return self.dump_rc, "", "mariadb-dump: Got error: 1044: Access denied for user 'root'@'localhost'\n"
        return 0, "", ""

    def _source(self, argv, path):
        assert "--abort-source-on-error" in argv, "source ignores errors without it"
        mode = stat.S_IMODE(os.stat(path).st_mode)
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        # A part restores alone: the dump's session settings before, their reset after.
        assert text.startswith(HEADER) and text.endswith(FOOTER)
        used = re.findall(r"^USE `(\w+)`;$", text, re.MULTILINE)
        assert used and set(used) == {used[0]}, f"a part must hold exactly one database, got {used}"
        db = used[0]
        self.sourced[db] = {"path": path, "mode": mode, "text": text}
        if db == self.restore_fail:
            return 1, "", f"ERROR 1064 (42000) at line 40 in file: '{path}': You have an error in your SQL syntax\n"
        tables = {}
        for line in text.splitlines():
            match = _INSERT_RE.match(line)
            if match:
                tables[match.group(1)] = re.findall(r"\(\d+,'[^']*'\)", match.group(2))
            elif line.startswith("CREATE TABLE `"):
                tables.setdefault(line.split("`")[1], [])
        self.tables[db] = tables
        return 0, "", ""

    # --- what the tests look at -------------------------------------------------------------------------------

    def ran(self, tool):
        return [argv for argv in self.calls if os.path.basename(argv[0]) == tool]

    def sources(self):
        return [argv for argv in self.ran("mariadb") if any(a.startswith("--execute=source ") for a in argv)]

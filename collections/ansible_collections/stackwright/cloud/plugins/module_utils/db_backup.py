# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Shared logic of stackwright.cloud.db_backup and stackwright.cloud.db_restore.

The backup set format (one directory, one compressed SQL file per database, manifest.json, SHA256SUMS), its
verification, retention, splitting one consistent mariadb-dump into one file per database, and the mariadb client
calls. Files are read and written here with plain Python, so the tests run this code on real files; the only
commands go through the module's run_command.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import stat
import tempfile
from datetime import UTC, datetime

from ansible_collections.stackwright.cloud.plugins.module_utils.files import tail

FORMAT = "stackwright-mariadb-backup"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
CHECKSUMS = "SHA256SUMS"
SET_PREFIX = "mariadb-"
# A set is written under this prefix and renamed when complete: a name without it always has its manifest.
PARTIAL_PREFIX = ".partial-"
LATEST = "latest"
SYSTEM_DATABASES = ("information_schema", "mysql", "performance_schema", "sys")
# Names that are safe as file names and in the dump's comments; every OpenStack database name fits.
DATABASE_NAME_RE = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
_SET_NAME_RE = re.compile(r"^mariadb-(\d{8}T\d{6}Z)(?:-(\d+))?$")
_FILE_NAME_RE = re.compile(r"^[A-Za-z0-9_$-]{1,64}\.sql(\.gz)?$")
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# The mariadb client's `source` command splits its argument itself: keep the path to plain characters.
SOURCE_PATH_RE = re.compile(r"^[A-Za-z0-9_./-]+$")

BIN_DIRS = ["/usr/bin", "/usr/sbin", "/bin", "/sbin"]
# Bigger than any row the server accepts (its max_allowed_packet is 64M by default in Stackwright).
CLIENT_MAX_PACKET = "1G"

# mariadb-dump of several databases: "-- Current Database: `name`" opens each one's part (a database with views
# gets a second part at the end); the footer starts with this line when --tz-utc is on; the last line says done.
_MARKER_RE = re.compile(rb"^-- Current Database: `((?:[^`]|``)+)`\r?\n?$")
_FOOTER_START = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;"
_COMPLETED = b"-- Dump completed"
_TAIL_BYTES = 64 * 1024
_CHUNK = 1024 * 1024

INFO_QUERY = (
    "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('version', 'wsrep_on', 'gtid_current_pos'); "
    "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_state_comment', 'wsrep_cluster_status', "
    "'wsrep_cluster_state_uuid', 'wsrep_last_committed'); "
    "SELECT 'database', SCHEMA_NAME FROM information_schema.SCHEMATA ORDER BY SCHEMA_NAME"
)

# The options every dump takes; the manifest records them.
DUMP_OPTIONS = [
    # One consistent snapshot (InnoDB) across every database of the invocation, without locking tables.
    "--single-transaction",
    "--skip-lock-tables",
    "--routines",
    "--triggers",
    "--events",
    "--hex-blob",
    # A restore brings a database back exactly: tables created since the backup go too.
    "--add-drop-database",
    # Tablespace statements are for NDB and need PROCESS; the dump's markers need the comments.
    "--no-tablespaces",
    "--comments",
    "--tz-utc",
    "--default-character-set=utf8mb4",
    f"--max-allowed-packet={CLIENT_MAX_PACKET}",
]


class BackupError(Exception):
    """A backup or a restore cannot go on; the message says why and what to do."""


def utc_now():
    return datetime.now(UTC)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_sort_key(name):
    """Sort key of a backup set name (newer is larger), or None when the name is not one."""
    match = _SET_NAME_RE.match(name)
    if not match:
        return None
    return match.group(1), int(match.group(2) or 0)


def new_set_name(moment, taken=()):
    """mariadb-YYYYmmddTHHMMSSZ (UTC), with -1, -2... when a run in the same second took the name."""
    base = SET_PREFIX + moment.strftime("%Y%m%dT%H%M%SZ")
    taken = set(taken)
    name, counter = base, 0
    while name in taken:
        counter += 1
        name = f"{base}-{counter}"
    return name


def human_size(size):
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


# --- credentials -------------------------------------------------------------------------------------------------


def login_argument_spec():
    """The login options of both modules (documented in the doc fragment stackwright.cloud.mariadb_login)."""
    return {
        "login_user": {"type": "str"},
        "login_password": {"type": "str", "no_log": True},
        "login_host": {"type": "str"},
        "login_port": {"type": "int", "default": 3306},
        "login_unix_socket": {"type": "path", "default": "/run/mysqld/mysqld.sock"},
        "config_file": {"type": "path"},
    }


def option_value(value):
    """A value for a MariaDB option file, double-quoted so that #, quotes and spaces survive."""
    text = str(value)
    if any(char in text for char in "\n\r\0"):
        raise BackupError("login options cannot contain line breaks or NUL characters")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def option_file_text(user=None, password=None, host=None, port=None, socket=None, include=None):
    """The [client] option file the clients read with --defaults-file: the password never goes on a command line."""
    lines = ["# Written by stackwright.cloud for one task and removed after it."]
    if include:
        # First, so that the explicit login options below win over the included file.
        lines.append(f"!include {include}")
    lines.append("[client]")
    if user is not None:
        lines.append(f"user = {option_value(user)}")
    if password is not None:
        lines.append(f"password = {option_value(password)}")
    if host:
        lines.append(f"host = {option_value(host)}")
        lines.append(f"port = {int(port)}")
        # Else the client uses the socket for localhost.
        lines.append("protocol = TCP")
    elif socket:
        lines.append(f"socket = {option_value(socket)}")
    return "\n".join(lines) + "\n"


class MariaDBClient:
    """The mariadb and mariadb-dump clients, logged in through a private option file while the `with` lasts."""

    def __init__(self, module):
        self.module = module
        self.option_file = None

    def __enter__(self):
        params = self.module.params
        include = params.get("config_file")
        if include and not os.path.isfile(include):
            self.module.fail_json(msg=f"config_file {include} does not exist (or is not a file).")
        try:
            text = option_file_text(
                user=params.get("login_user"),
                password=params.get("login_password"),
                host=params.get("login_host"),
                port=params.get("login_port"),
                socket=params.get("login_unix_socket"),
                include=include,
            )
        except BackupError as error:
            self.module.fail_json(msg=str(error))
        handle, self.option_file = tempfile.mkstemp(prefix="stackwright-db-", suffix=".cnf")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        return self

    def __exit__(self, *_exc):
        if self.option_file and os.path.exists(self.option_file):
            os.unlink(self.option_file)
        self.option_file = None
        return False

    def bin(self, name):
        return self.module.get_bin_path(name, required=True, opt_dirs=BIN_DIRS)

    def _login(self):
        # --defaults-file must come first, and makes the client read no other option file.
        return [f"--defaults-file={self.option_file}"]

    def server_info(self):
        argv = [
            self.bin("mariadb"),
            *self._login(),
            "--batch",
            "--skip-column-names",
            "--connect-timeout=10",
            f"--execute={INFO_QUERY}",
        ]
        rc, out, err = self._run(argv)
        if rc != 0:
            self.module.fail_json(
                msg=f"Cannot query the database server (mariadb exited with {rc}): {tail(err or out)}. Check the "
                "login options; the default logs in as the system user (root) over the unix socket.",
            )
        return parse_server_info(out)

    def dump(self, result_file, databases):
        """Run one mariadb-dump of every database; return (rc, stderr tail, the options used)."""
        argv = [
            self.bin("mariadb-dump"),
            *self._login(),
            *DUMP_OPTIONS,
            f"--result-file={result_file}",
            "--databases",
            *databases,
        ]
        rc, out, err = self._run(argv)
        return rc, tail(err or out), list(DUMP_OPTIONS)

    def source(self, sql_file):
        """Replay one SQL file; (rc, output tail)."""
        argv = [
            self.bin("mariadb"),
            *self._login(),
            "--batch",
            # Without it `source` goes on after a failed statement, and the client may still exit 0.
            "--abort-source-on-error",
            "--default-character-set=utf8mb4",
            f"--max-allowed-packet={CLIENT_MAX_PACKET}",
            f"--execute=source {sql_file}",
        ]
        rc, out, err = self._run(argv)
        return rc, tail(err or out)

    def _run(self, argv):
        # Arguments reach the tools as written: no ~ or $VAR expansion (a database name may hold a $).
        return self.module.run_command(argv, expand_user_and_vars=False)


# --- server state ------------------------------------------------------------------------------------------------


def parse_server_info(output):
    """Version, GTID position, wsrep state and the databases, from INFO_QUERY's tab-separated output."""
    info = {
        "version": None,
        "gtid_current_pos": None,
        "wsrep_on": False,
        "wsrep_local_state_comment": None,
        "wsrep_cluster_status": None,
        "wsrep_cluster_state_uuid": None,
        "wsrep_last_committed": None,
        "databases": [],
    }
    for line in (output or "").splitlines():
        name, sep, value = line.partition("\t")
        if not sep:
            continue
        key = name.strip().lower()
        value = value.strip()
        if key == "database":
            info["databases"].append(value)
        elif key == "wsrep_on":
            info["wsrep_on"] = value.upper() in ("ON", "1")
        elif key == "wsrep_last_committed":
            info[key] = int(value) if value.lstrip("-").isdigit() else None
        elif key in info:
            info[key] = value or None
    return info


def galera_state(info):
    """The Galera position and state for the manifest; None on a server without Galera."""
    if not info["wsrep_on"]:
        return None
    return {
        "cluster_state_uuid": info["wsrep_cluster_state_uuid"],
        "last_committed": info["wsrep_last_committed"],
        "local_state": info["wsrep_local_state_comment"],
        "cluster_status": info["wsrep_cluster_status"],
    }


def galera_refusal(info):
    """Why this node must not be used (not Synced in a Primary component), or None."""
    if not info["wsrep_on"]:
        return None
    state, status = info["wsrep_local_state_comment"], info["wsrep_cluster_status"]
    if state == "Synced" and status == "Primary":
        return None
    return (
        f"this Galera node is {state or 'in an unknown state'} in a {status or 'unknown'} component, not Synced in "
        "a Primary one: its data may be behind the cluster's, or it takes no writes"
    )


def major_minor(version):
    match = re.match(r"^(\d+)\.(\d+)", version or "")
    return (int(match.group(1)), int(match.group(2))) if match else None


# --- the dump ----------------------------------------------------------------------------------------------------


def split_dump(raw_path, databases, open_part):
    """Split one mariadb-dump --databases file into one self-contained SQL script per database.

    Each part is the dump's header (session settings), the database's own sections and the dump's footer, so that
    it restores alone. open_part(database) returns a writable binary file; it is closed here. Returns the
    uncompressed size of each part. Raises BackupError for a dump that did not finish or that has an unexpected
    shape; nothing is guessed.
    """
    wanted = set(databases)
    size = os.path.getsize(raw_path)
    parts, sizes = {}, {}
    try:
        with open(raw_path, "rb") as raw:
            tail_start = max(0, size - _TAIL_BYTES)
            raw.seek(tail_start)
            end = raw.read()
            last_lines = [line for line in end.splitlines() if line.strip()]
            if not last_lines or not last_lines[-1].startswith(_COMPLETED):
                raise BackupError(
                    "mariadb-dump did not finish its output (no '-- Dump completed' at the end): the dump is "
                    "incomplete (out of disk space?)"
                )
            found = end.rfind(b"\n" + _FOOTER_START + b"\n")
            if found < 0:
                raise BackupError("the dump has no footer line where expected: unknown mariadb-dump output format")
            footer_offset = tail_start + found + 1
            raw.seek(footer_offset)
            footer = raw.read()

            raw.seek(0)
            header = []
            current, offset = None, 0
            while offset < footer_offset:
                line = raw.readline()
                if not line:
                    break
                offset += len(line)
                match = _MARKER_RE.match(line)
                if match:
                    current = match.group(1).replace(b"``", b"`").decode("utf-8", "replace")
                    if current not in wanted:
                        raise BackupError(f"the dump holds database {current}, which was not asked for")
                    if current not in parts:
                        parts[current] = open_part(current)
                        head = b"".join(header)
                        parts[current].write(head)
                        sizes[current] = len(head)
                if current is None:
                    header.append(line)
                    continue
                parts[current].write(line)
                sizes[current] += len(line)
            for name, part in parts.items():
                part.write(footer)
                sizes[name] += len(footer)
    finally:
        for part in parts.values():
            part.close()
    missing = [name for name in databases if name not in parts]
    if missing:
        raise BackupError(f"the dump holds no part for database(s) {', '.join(missing)}")
    return sizes


class PartWriter:
    """A new 0600 file, gzip-compressed or plain, flushed to disk when closed."""

    def __init__(self, path, compression):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.fchmod(fd, 0o600)
        self.raw = os.fdopen(fd, "wb")
        self.out = self.raw
        if compression == "gzip":
            # mtime=0: the same dump compresses to the same bytes.
            self.out = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, compresslevel=6, mtime=0)

    def write(self, data):
        self.out.write(data)

    def close(self):
        if self.raw.closed:
            return
        if self.out is not self.raw:
            self.out.close()
        self.raw.flush()
        os.fsync(self.raw.fileno())
        self.raw.close()


def part_file_name(database, compression):
    return f"{database}.sql.gz" if compression == "gzip" else f"{database}.sql"


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def checksums_text(entries):
    """SHA256SUMS in the format of sha256sum, so `sha256sum -c SHA256SUMS` checks a set by hand."""
    return "".join(f"{digest}  {name}\n" for name, digest in entries)


# --- sets: listing, retention, verification ----------------------------------------------------------------------


def load_manifest(set_path):
    path = os.path.join(set_path, MANIFEST)
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except FileNotFoundError:
        raise BackupError(f"{path} does not exist: not a backup set, or an incomplete one") from None
    except (OSError, ValueError) as error:
        raise BackupError(f"{path} cannot be read as JSON: {error}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{path} is not a manifest of a {FORMAT} set")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupError(
            f"{path} has format version {manifest.get('format_version')!r}; this module reads version {FORMAT_VERSION}"
        )
    return manifest


def scan_sets(directory):
    """(complete sets newest first as dicts name/path/key, paths of partial or broken sets).

    A complete set is a directory with a set name and a readable manifest; its files are checked only by
    verify_set. Anything else in the directory is not ours and is left out.
    """
    complete, other = [], []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return [], []
    for entry in entries:
        if entry.name.startswith(PARTIAL_PREFIX + SET_PREFIX):
            other.append(entry.path)
            continue
        key = set_sort_key(entry.name)
        if key is None:
            continue
        if not entry.is_dir(follow_symlinks=False):
            other.append(entry.path)
            continue
        try:
            load_manifest(entry.path)
        except BackupError:
            other.append(entry.path)
            continue
        complete.append({"name": entry.name, "path": entry.path, "key": key})
    complete.sort(key=lambda s: s["key"], reverse=True)
    return complete, sorted(other)


def choose_removals(complete, keep, current=None):
    """The complete sets retention removes: all but the `keep` newest, the current one always kept; keep 0 keeps all.

    complete is newest first. current is the set this run made (None before it exists: it still counts as one).
    """
    if keep <= 0:
        return []
    others = [s for s in complete if s["name"] != current]
    return others[keep - 1 :]


def resolve_set_path(path):
    """The set a path names: itself, or for <dir>/latest (when no such entry exists) the newest complete set."""
    path = os.path.normpath(path)
    if os.path.basename(path) == LATEST and not os.path.lexists(path):
        directory = os.path.dirname(path)
        complete, _other = scan_sets(directory)
        if not complete:
            raise BackupError(f"{directory} holds no complete backup set, so there is no latest one")
        return complete[0]["path"]
    return path


def verify_set(set_path):
    """(manifest or None, problems): every problem found in the set, empty when it verifies.

    Checks the manifest, that it lists each database once with a plain file name, and every file's type, size and
    sha256 against it, and SHA256SUMS against the files.
    """
    if not os.path.isdir(set_path):
        return None, [f"{set_path} is not a directory"]
    try:
        manifest = load_manifest(set_path)
    except BackupError as error:
        return None, [str(error)]
    problems = []
    files = manifest.get("files")
    databases = manifest.get("databases")
    if not isinstance(files, list) or not files:
        return manifest, ["the manifest lists no files"]
    if not isinstance(databases, list) or [f.get("database") for f in files if isinstance(f, dict)] != databases:
        problems.append("the manifest's databases do not match its files")
    if manifest.get("compression") not in ("gzip", "none"):
        problems.append(f"unknown compression {manifest.get('compression')!r} in the manifest")
    expected_sums = {}
    for index, entry in enumerate(files):
        if not isinstance(entry, dict):
            problems.append(f"file entry {index} of the manifest is not a mapping")
            continue
        name = entry.get("name")
        if not isinstance(name, str) or not _FILE_NAME_RE.match(name):
            # Never follow a name that could point outside the set.
            problems.append(f"file entry {index} has an invalid name {name!r}")
            continue
        if not isinstance(entry.get("database"), str) or not DATABASE_NAME_RE.match(entry["database"]):
            problems.append(f"{name}: invalid database name {entry.get('database')!r}")
        digest, size = entry.get("sha256"), entry.get("size")
        if not isinstance(digest, str) or not _SHA256_RE.match(digest) or not isinstance(size, int):
            problems.append(f"{name}: the manifest has no valid size and sha256 for it")
            continue
        expected_sums[name] = digest
        path = os.path.join(set_path, name)
        try:
            info = os.lstat(path)
        except FileNotFoundError:
            problems.append(f"{name} is missing")
            continue
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{name} is not a regular file")
            continue
        if info.st_size != size:
            problems.append(f"{name} has {info.st_size} bytes, the manifest says {size}")
            continue
        actual = sha256_file(path)
        if actual != digest:
            problems.append(f"{name}: sha256 {actual} does not match the manifest's {digest}")
    problems.extend(_check_sums_file(set_path, expected_sums))
    return manifest, problems


def _check_sums_file(set_path, expected):
    path = os.path.join(set_path, CHECKSUMS)
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return [f"{CHECKSUMS} is missing"]
    except OSError as error:
        return [f"{CHECKSUMS} cannot be read: {error}"]
    listed = {}
    for line in lines:
        digest, _sep, name = line.partition("  ")
        listed[name] = digest
    problems = []
    manifest_digest = listed.pop(MANIFEST, None)
    if manifest_digest is None:
        problems.append(f"{CHECKSUMS} does not list {MANIFEST}")
    elif manifest_digest != sha256_file(os.path.join(set_path, MANIFEST)):
        problems.append(f"{MANIFEST} does not match its sha256 in {CHECKSUMS} (changed after the backup)")
    if listed != expected:
        problems.append(f"{CHECKSUMS} and {MANIFEST} list different files or checksums")
    return problems


def unpack_part(src, dest, compression, expected_sha256):
    """Write the SQL of one verified file to dest (0600), hashing what is read: the bytes replayed are the bytes
    verified. Raises BackupError when the file changed since it was verified."""
    digest = hashlib.sha256()

    class _Hashing:
        def __init__(self, handle):
            self.handle = handle

        def read(self, size=-1):
            data = self.handle.read(size)
            digest.update(data)
            return data

    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.fchmod(fd, 0o600)
    with open(src, "rb") as handle, os.fdopen(fd, "wb") as out:
        source = _Hashing(handle)
        reader = gzip.GzipFile(fileobj=source, mode="rb") if compression == "gzip" else source
        try:
            for chunk in iter(lambda: reader.read(_CHUNK), b""):
                out.write(chunk)
            # Whatever gzip left unread still counts for the checksum.
            while source.read(_CHUNK):
                pass
        except (OSError, EOFError) as error:
            raise BackupError(f"{src} cannot be decompressed: {error}") from None
    if digest.hexdigest() != expected_sha256:
        raise BackupError(f"{src} changed after it was verified (sha256 {digest.hexdigest()})")

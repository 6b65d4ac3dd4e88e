# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_backup
short_description: Back up MariaDB databases in one consistent dump, as a checksummed backup set with retention
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Runs on a MariaDB server (a Galera member as Stackwright deploys it) and writes one backup set per run into
    O(dest), restorable with M(stackwright.cloud.db_restore).
  - >-
    One C(mariadb-dump --single-transaction --databases ...) dumps every database in the same InnoDB snapshot, so
    the databases agree with each other (nova, nova_api and placement refer to each other's rows). The dump is
    then split into one gzip-compressed SQL file per database, each a script that restores that database alone
    (it drops and recreates it).
  - >-
    A set is a directory C(mariadb-<UTC time>) (mode 0700) with the files (mode 0600), C(manifest.json)
    (databases, server version, GTID and Galera position read just before the dump, dump options, and the size
    and sha256 of every file) and C(SHA256SUMS) (C(sha256sum -c SHA256SUMS) checks a set by hand). It is written
    under a hidden C(.partial-) name and renamed when complete, so a set that looks complete is complete; a failed
    run leaves nothing behind.
  - >-
    Retention keeps the O(keep) newest complete sets, the new one always among them, and deletes older ones;
    it never touches incomplete sets (reported in RV(incomplete)) or anything else in O(dest).
  - >-
    Why not M(community.mysql.mysql_db) or M(ansible.mariadb.mariadb_db) with C(state=dump): they write one file
    with no manifest, checksum, retention or atomic completion, they cannot restore one database out of a
    multi-database dump, and they pass the password on the command line. This module adds those and refuses a
    Galera node that is not Synced. A physical backup (mariabackup) restores only a whole server, which on Galera
    means stopping and re-seeding the cluster, so this module does logical dumps.
options:
  dest:
    description:
      - The directory that holds the backup sets; created with mode 0700 if missing.
    type: path
    default: /var/backups/mariadb
  databases:
    description:
      - The databases to back up, all in one transaction. Stackwright's playbook passes every service database
        of the service registry.
      - When not set, every database on the server except C(information_schema), C(mysql),
        C(performance_schema) and C(sys) (users and grants are not backed up; the roles recreate them).
      - A listed database that the server does not have fails the task, unless O(skip_missing=true).
    type: list
    elements: str
  skip_missing:
    description:
      - Leave out, with a warning, the listed databases the server does not have (for example of a service not
        deployed yet) instead of failing. When none is left, no set is written and the task reports no change.
    type: bool
    default: false
  keep:
    description:
      - How many complete sets to keep in O(dest), the new one included. V(0) keeps every set.
    type: int
    default: 7
  compression:
    description:
      - V(gzip) compresses every file; V(none) writes plain SQL.
    type: str
    choices: [gzip, none]
    default: gzip
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.mariadb_login
attributes:
  check_mode:
    support: full
    details: Queries the server (read only), then reports the set it would write and the sets retention would delete.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs the C(mariadb) and C(mariadb-dump) clients (Debian package C(mariadb-client)) and root (C(become)) for the
    default login and O(dest).
  - On Galera every member holds the same data, so run it on one member only (C(run_once)); it refuses a member
    that is not Synced in a Primary component, whose data may be behind.
  - >-
    The consistency covers InnoDB tables, which is what OpenStack uses. The dump runs while the cloud works; a
    long dump holds an old snapshot open, which costs InnoDB undo space but blocks no writes.
  - >-
    Space: the uncompressed dump is written into O(dest) first and split and compressed from there, so O(dest)
    needs room for the uncompressed dump plus the compressed set while the task runs.
  - >-
    The user needs SELECT, SHOW VIEW, TRIGGER, EVENT and LOCK TABLES on the databases; root has them. Stackwright's
    C(mariadb_backup_user) has only what mariabackup needs for state transfers, which is not enough.
seealso:
  - module: stackwright.cloud.db_restore
  - name: mariadb-dump
    description: The dump tool and its options.
    link: https://mariadb.com/kb/en/mariadb-dump/
"""

EXAMPLES = r"""
- name: Back up every service database on one controller, keeping seven sets
  stackwright.cloud.db_backup:
    dest: /var/backups/mariadb
    databases: [glance, keystone, neutron, nova, nova_api, nova_cell0, placement]
    keep: 7
  become: true
  run_once: true
  register: backup

- name: Show where it went
  ansible.builtin.debug:
    msg: "{{ backup.path }}: {{ backup.manifest.files | map(attribute='name') | join(', ') }}"
  run_once: true

# Every non-system database, logging in over TCP with a password instead of root's unix socket.
- name: Back up a standalone server as a dedicated user
  stackwright.cloud.db_backup:
    dest: /srv/backups/mariadb
    login_host: 127.0.0.1
    login_user: backup
    login_password: "{{ backup_db_password }}"
    keep: 14
"""

RETURN = r"""
path:
  description: The backup set (in check mode, the one that would be written).
  returned: success, unless nothing was left to back up
  type: str
  sample: /var/backups/mariadb/mariadb-20260509T120000Z
name:
  description: The name of the set.
  returned: success, unless nothing was left to back up
  type: str
  sample: mariadb-20260509T120000Z
databases:
  description: The databases in the set, in the order of the dump.
  returned: always
  type: list
  elements: str
  sample: [glance, keystone, nova, nova_api]
skipped:
  description: Listed databases the server does not have, left out because of O(skip_missing).
  returned: always
  type: list
  elements: str
  sample: []
manifest:
  description: The content of the set's C(manifest.json).
  returned: when a set was written
  type: dict
  contains:
    format:
      description: Always C(stackwright-mariadb-backup).
      type: str
    format_version:
      description: The version of the format, 1.
      type: int
    name:
      description: The name of the set.
      type: str
    created:
      description: When the dump started (UTC).
      type: str
      sample: "2026-05-09T12:00:00Z"
    finished:
      description: When the set was complete (UTC).
      type: str
    host:
      description: The host that took the dump.
      type: str
    method:
      description: C(mariadb-dump).
      type: str
    consistent:
      description: Whether all databases come from one transaction (always true).
      type: bool
    dump_options:
      description: The options of C(mariadb-dump), without login and file names.
      type: list
      elements: str
    compression:
      description: C(gzip) or C(none).
      type: str
    server:
      description: C(version) and C(gtid_current_pos) of the server, read just before the dump.
      type: dict
      sample: {"version": "11.8.3-MariaDB-0+deb13u1", "gtid_current_pos": "0-1-1842"}
    galera:
      description: >-
        C(cluster_state_uuid), C(last_committed) (the seqno just before the dump; the snapshot is at or after it),
        C(local_state) and C(cluster_status); null without Galera.
      type: dict
      sample: {"cluster_state_uuid": "6b2a7c1e-0f5d-11f0-9a55-0e8e3b2d4c11", "last_committed": 18342,
               "local_state": "Synced", "cluster_status": "Primary"}
    databases:
      description: The databases, in the order of RV(manifest.files).
      type: list
      elements: str
    files:
      description: One entry per database, with C(database), C(name), C(size) (bytes on disk), C(sql_size)
        (uncompressed) and C(sha256).
      type: list
      elements: dict
      sample: [{"database": "glance", "name": "glance.sql.gz", "size": 10482, "sql_size": 61733,
                "sha256": "5f2b6c0e5d1f9d1a0b9b8f9d8a5e7c3b2a1f0e9d8c7b6a5f4e3d2c1b0a9f8e7d"}]
removed:
  description: The sets retention deleted (in check mode, would delete).
  returned: always
  type: list
  elements: str
  sample: [/var/backups/mariadb/mariadb-20260501T120000Z]
kept:
  description: The complete sets in O(dest) after retention, newest first.
  returned: when a set was written
  type: list
  elements: str
  sample: [mariadb-20260509T120000Z, mariadb-20260508T120000Z]
incomplete:
  description: >-
    Entries in O(dest) that look like sets but are not complete (left by an interrupted run, or without a readable
    manifest). They are never counted or deleted; remove them by hand once no backup runs.
  returned: always
  type: list
  elements: str
  sample: [/var/backups/mariadb/.partial-mariadb-20260508T120000Z-k2j3h4]
msg:
  description: What was done, or would be done in check mode.
  returned: always
  type: str
  sample: >-
    Backed up 7 database(s) (glance, keystone, neutron, nova, nova_api, nova_cell0, placement) in one transaction
    to /var/backups/mariadb/mariadb-20260509T120000Z (3.1 MiB); removed 1 old set(s), 7 kept.
"""

import json
import os
import shutil
import socket
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stackwright.cloud.plugins.module_utils.db_backup import (
    CHECKSUMS,
    DATABASE_NAME_RE,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    PARTIAL_PREFIX,
    SYSTEM_DATABASES,
    BackupError,
    MariaDBClient,
    PartWriter,
    checksums_text,
    choose_removals,
    fsync_dir,
    galera_refusal,
    galera_state,
    human_size,
    iso,
    login_argument_spec,
    new_set_name,
    part_file_name,
    scan_sets,
    sha256_file,
    split_dump,
    utc_now,
    write_private,
)

RAW_DUMP = "dump.sql.tmp"


def choose_databases(module, info):
    """(databases to dump, listed ones the server lacks and skip_missing leaves out)."""
    params = module.params
    present = info["databases"]
    if params["databases"] is None:
        wanted = [name for name in present if name not in SYSTEM_DATABASES]
    else:
        wanted = list(dict.fromkeys(params["databases"]))
        if not wanted:
            module.fail_json(msg="databases is empty: name at least one, or leave it out to back up every database.")
    invalid = [name for name in wanted if not DATABASE_NAME_RE.match(name)]
    if invalid:
        module.fail_json(
            msg=f"Unsupported database name(s) {', '.join(map(repr, invalid))}: this module takes names of letters, "
            "digits, '_', '$' and '-' (at most 64); list the others in databases."
        )
    system = [name for name in wanted if name in SYSTEM_DATABASES]
    if system:
        module.fail_json(
            msg=f"{', '.join(system)} is a system database: users and grants are not backed up here (the roles "
            "recreate them), and a restore that drops the mysql database would lock everyone out."
        )
    missing = [name for name in wanted if name not in present]
    if missing and not params["skip_missing"]:
        module.fail_json(
            msg=f"The server has no database {', '.join(missing)} (it has: {', '.join(present) or 'none'}). Correct "
            "databases, or set skip_missing: true to back up the others. Nothing was written.",
        )
    return [name for name in wanted if name not in missing], missing


def write_set(module, client, info, databases, dest, name):
    """Dump, split and checksum into a partial directory, then rename it to its final name; return the manifest."""
    compression = module.params["compression"]
    partial = tempfile.mkdtemp(dir=dest, prefix=f"{PARTIAL_PREFIX}{name}-")
    complete = False
    try:
        started = utc_now()
        raw = os.path.join(partial, RAW_DUMP)
        rc, err, options = client.dump(raw, databases)
        if rc != 0:
            raise BackupError(f"mariadb-dump exited with {rc}: {err}")
        sizes = split_dump(
            raw, databases, lambda db: PartWriter(os.path.join(partial, part_file_name(db, compression)), compression)
        )
        os.unlink(raw)
        files = []
        for db in databases:
            path = os.path.join(partial, part_file_name(db, compression))
            files.append(
                {
                    "database": db,
                    "name": os.path.basename(path),
                    "size": os.path.getsize(path),
                    "sql_size": sizes[db],
                    "sha256": sha256_file(path),
                }
            )
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "name": name,
            "created": iso(started),
            "finished": iso(utc_now()),
            "host": socket.gethostname(),
            "method": "mariadb-dump",
            "consistent": True,
            "dump_options": options,
            "compression": compression,
            "server": {"version": info["version"], "gtid_current_pos": info["gtid_current_pos"]},
            "galera": galera_state(info),
            "databases": list(databases),
            "files": files,
        }
        write_private(os.path.join(partial, MANIFEST), json.dumps(manifest, indent=2) + "\n")
        sums = [(f["name"], f["sha256"]) for f in files] + [(MANIFEST, sha256_file(os.path.join(partial, MANIFEST)))]
        write_private(os.path.join(partial, CHECKSUMS), checksums_text(sums))
        fsync_dir(partial)
        final = os.path.join(dest, name)
        if os.path.lexists(final):
            raise BackupError(f"{final} appeared while the dump ran (another backup at the same second?)")
        os.rename(partial, final)
        fsync_dir(dest)
        complete = True
        return manifest
    except (BackupError, OSError) as error:
        module.fail_json(msg=f"Backup failed: {error}. The partial set was removed; the existing sets are untouched.")
    finally:
        if not complete:
            shutil.rmtree(partial, ignore_errors=True)


def apply_retention(module, dest, keep, current):
    """Delete the sets retention drops; a deletion that fails is a warning, the backup itself stands."""
    complete, _other = scan_sets(dest)
    removed = []
    for entry in choose_removals(complete, keep, current):
        try:
            shutil.rmtree(entry["path"])
            removed.append(entry["path"])
        except OSError as error:
            module.warn(f"Retention could not delete {entry['path']}: {error}")
    kept = [s["name"] for s in scan_sets(dest)[0]]
    return removed, kept


def main():
    module = AnsibleModule(
        argument_spec={
            "dest": {"type": "path", "default": "/var/backups/mariadb"},
            "databases": {"type": "list", "elements": "str"},
            "skip_missing": {"type": "bool", "default": False},
            "keep": {"type": "int", "default": 7},
            "compression": {"type": "str", "choices": ["gzip", "none"], "default": "gzip"},
            **login_argument_spec(),
        },
        supports_check_mode=True,
    )
    params = module.params
    dest = params["dest"]
    keep = params["keep"]
    if keep < 0:
        module.fail_json(msg=f"keep is {keep}: give the number of sets to keep, or 0 to keep every set.")
    if os.path.exists(dest) and not os.path.isdir(dest):
        module.fail_json(msg=f"dest {dest} exists and is not a directory.")

    with MariaDBClient(module) as client:
        info = client.server_info()
        refusal = galera_refusal(info)
        if refusal:
            module.fail_json(
                msg=f"Refusing to back up on this node: {refusal}. Run it on a Synced member (playbooks/backup.yml: "
                "-e db_backup_host=<host>). Nothing was written.",
                galera=galera_state(info),
            )
        databases, skipped = choose_databases(module, info)
        for name in skipped:
            module.warn(f"Database {name} does not exist on this server and is not in the backup (skip_missing).")
        complete, incomplete = scan_sets(dest)
        for path in incomplete:
            module.warn(f"{path} is an incomplete or broken backup set; it is not counted. Remove it by hand.")
        result = {"databases": databases, "skipped": skipped, "incomplete": incomplete, "removed": []}
        if not databases:
            module.exit_json(
                changed=False,
                msg="Nothing to back up: none of the databases exists on this server. No set was written.",
                **result,
            )

        taken = os.listdir(dest) if os.path.isdir(dest) else []
        name = new_set_name(utc_now(), taken)
        final = os.path.join(dest, name)
        if module.check_mode:
            result["removed"] = [s["path"] for s in choose_removals(complete, keep, None)]
            module.exit_json(
                changed=True,
                path=final,
                name=name,
                msg=f"Would back up {len(databases)} database(s) ({', '.join(databases)}) in one transaction to "
                f"{final}" + (f" and remove {len(result['removed'])} old set(s)" if result["removed"] else "") + ".",
                **result,
            )

        try:
            # Only the leaf gets 0700; the parents are ordinary directories.
            os.makedirs(dest, mode=0o700, exist_ok=True)
        except OSError as error:
            module.fail_json(msg=f"Cannot create {dest}: {error}.")
        manifest = write_set(module, client, info, databases, dest, name)

    result["removed"], kept = apply_retention(module, dest, keep, name)
    total = sum(f["size"] for f in manifest["files"])
    module.exit_json(
        changed=True,
        path=final,
        name=name,
        manifest=manifest,
        kept=kept,
        msg=f"Backed up {len(databases)} database(s) ({', '.join(databases)}) in one transaction to {final} "
        f"({human_size(total)}); removed {len(result['removed'])} old set(s), {len(kept)} kept.",
        **result,
    )


if __name__ == "__main__":
    main()

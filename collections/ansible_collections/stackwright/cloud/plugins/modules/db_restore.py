# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: db_restore
short_description: Restore MariaDB databases from a backup set of db_backup, refusing a set that does not verify
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Restores databases from a backup set that M(stackwright.cloud.db_backup) wrote.
  - >-
    Before it touches anything it verifies the set: C(manifest.json) must be one of ours, every file it lists
    must exist with the recorded size and sha256, and C(SHA256SUMS) must agree. It refuses, naming every
    problem, when the set does not verify, when a database in O(databases) is not in the set, or when the server
    is a Galera node that is not Synced in a Primary component.
  - >-
    Then it unpacks the chosen files into a private temporary directory, checking each file's sha256 again while
    it reads it (the SQL replayed is the SQL verified), and only then replays them one database after the other
    with the C(mariadb) client, stopping at the first failed statement. Each file drops and recreates its
    database, so a restored database holds exactly what the backup held, tables created since then included.
  - >-
    Why not M(community.mysql.mysql_db) or M(ansible.mariadb.mariadb_db) with C(state=import): they import any file
    without checking it and cannot restore one database out of a multi-database dump. This module adds
    verification before anything changes and the choice of databases.
options:
  path:
    description:
      - The backup set, a directory that holds C(manifest.json).
      - V(<directory>/latest), when no entry C(latest) exists there, means the newest complete set in that
        directory (by the time in its name).
    type: path
    required: true
  databases:
    description:
      - The databases to restore, each of which must be in the set. Default all databases of the set.
      - They are restored in the order of the set, not of this list.
    type: list
    elements: str
  tmp_dir:
    description:
      - Where to unpack the SQL before the restore (a private directory inside it, removed afterwards).
      - It needs room for the uncompressed SQL of the chosen databases (C(sql_size) in the manifest).
      - Default the directory that holds the set. Not C(/tmp), which is a small tmpfs on Debian 13.
    type: path
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.mariadb_login
attributes:
  check_mode:
    support: full
    details: >-
      Verifies the set and the chosen databases, reports what would be restored, and neither contacts the server
      nor writes anything. So it can also check a copy of a set on a host without MariaDB.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs the C(mariadb) client and root (C(become)) for the default login.
  - >-
    On Galera the restore is SQL that replicates to every member: run it on one member only (C(run_once)), never
    on two at once. Every member ends with the restored data.
  - >-
    Stop the OpenStack services that use the databases first: writes they make during the restore are lost or
    mixed into the restored data, and their open transactions can hold up C(DROP DATABASE). Start them afterwards.
  - >-
    A failure part way leaves the databases before the failed one restored, the failed one dropped or partly
    loaded and the later ones untouched; the result says which (RV(restored), RV(failed), RV(pending)). Fix the
    cause and run the restore again: it starts each database from scratch.
  - Users and grants are not in the set; the service users stay as they are (the roles manage them).
seealso:
  - module: stackwright.cloud.db_backup
"""

EXAMPLES = r"""
- name: Check that the newest set verifies, without touching the server
  stackwright.cloud.db_restore:
    path: /var/backups/mariadb/latest
  check_mode: true
  become: true
  run_once: true

- name: Restore the nova databases from a named set, on one Galera member
  stackwright.cloud.db_restore:
    path: /var/backups/mariadb/mariadb-20260509T120000Z
    databases: [nova, nova_api, nova_cell0]
  become: true
  run_once: true
  register: restore

- name: Verify a copy of a set on the deploy host (no MariaDB needed there)
  stackwright.cloud.db_restore:
    path: "{{ lookup('ansible.builtin.env', 'HOME') }}/stackwright-backups/prod/mariadb-20260509T120000Z"
  check_mode: true
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
path:
  description: The backup set, with V(latest) resolved.
  returned: when the set was found
  type: str
  sample: /var/backups/mariadb/mariadb-20260509T120000Z
name:
  description: The name of the set, from its manifest.
  returned: when the set verified
  type: str
  sample: mariadb-20260509T120000Z
databases:
  description: The databases chosen to restore (restored, or in check mode to be restored), in restore order.
  returned: when the set verified
  type: list
  elements: str
  sample: [nova, nova_api, nova_cell0]
restored:
  description: The databases restored completely.
  returned: always
  type: list
  elements: str
  sample: [nova, nova_api, nova_cell0]
failed:
  description: The database whose restore failed; it may be dropped or partly loaded.
  returned: when a restore command failed
  type: str
  sample: nova_api
pending:
  description: The databases not attempted after the failure; they are untouched.
  returned: when a restore command failed
  type: list
  elements: str
  sample: [nova_cell0]
problems:
  description: Every reason the set does not verify.
  returned: when the set does not verify
  type: list
  elements: str
  sample: ["nova.sql.gz: sha256 0c1f... does not match the manifest's 9ab2..."]
manifest:
  description: The set's manifest (see RV(stackwright.cloud.db_backup#module:manifest)).
  returned: when the set verified
  type: dict
msg:
  description: What was done, would be done in check mode, or why nothing was done.
  returned: always
  type: str
  sample: "Restored 3 database(s) (nova, nova_api, nova_cell0) from /var/backups/mariadb/mariadb-20260509T120000Z."
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stackwright.cloud.plugins.module_utils.db_backup import (
    SOURCE_PATH_RE,
    SYSTEM_DATABASES,
    BackupError,
    MariaDBClient,
    galera_refusal,
    galera_state,
    login_argument_spec,
    major_minor,
    resolve_set_path,
    unpack_part,
    verify_set,
)


def choose_databases(module, manifest, set_path):
    in_set = manifest["databases"]
    wanted = module.params["databases"]
    if wanted is None:
        wanted = in_set
    if not wanted:
        module.fail_json(msg="databases is empty: name at least one, or leave it out to restore the whole set.")
    system = [name for name in dict.fromkeys(wanted) if name in SYSTEM_DATABASES]
    if system:
        module.fail_json(msg=f"Refusing to restore the system database(s) {', '.join(system)}. Nothing was changed.")
    unknown = [name for name in dict.fromkeys(wanted) if name not in in_set]
    if unknown:
        module.fail_json(
            msg=f"Refusing to restore: {', '.join(unknown)} is not in the backup set {set_path} (it holds: "
            f"{', '.join(in_set)}). Nothing was changed.",
            path=set_path,
            restored=[],
        )
    return [name for name in in_set if name in wanted]


def check_server(module, client, manifest):
    info = client.server_info()
    refusal = galera_refusal(info)
    if refusal:
        module.fail_json(
            msg=f"Refusing to restore on this node: {refusal}. Run it on a Synced member of a Primary component. "
            "Nothing was changed.",
            galera=galera_state(info),
            restored=[],
        )
    server = manifest.get("server") if isinstance(manifest.get("server"), dict) else {}
    source, target = major_minor(server.get("version")), major_minor(info["version"])
    if source and target and target < source:
        module.warn(
            f"The backup comes from MariaDB {server['version']} and this server runs {info['version']}: "
            "restoring into an older version can fail on statements it does not know."
        )


def unpack_all(module, set_path, manifest, databases, work):
    """Unpack every chosen file before the first database is touched."""
    files = {entry["database"]: entry for entry in manifest["files"]}
    unpacked = {}
    for index, db in enumerate(databases):
        entry = files[db]
        # Numbered: the path goes to the client's source command, which a database name could confuse.
        dest = os.path.join(work, f"{index:03d}.sql")
        try:
            unpack_part(os.path.join(set_path, entry["name"]), dest, manifest["compression"], entry["sha256"])
        except (BackupError, OSError) as error:
            module.fail_json(msg=f"Refusing to restore: {error}. Nothing was changed.", path=set_path, restored=[])
        unpacked[db] = dest
    return unpacked


def main():
    module = AnsibleModule(
        argument_spec={
            "path": {"type": "path", "required": True},
            "databases": {"type": "list", "elements": "str"},
            "tmp_dir": {"type": "path"},
            **login_argument_spec(),
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        set_path = resolve_set_path(params["path"])
    except BackupError as error:
        module.fail_json(msg=f"Refusing to restore: {error}. Nothing was changed.", restored=[])

    manifest, problems = verify_set(set_path)
    if problems:
        module.fail_json(
            msg=f"Refusing to restore {set_path}: the backup set does not verify: {'; '.join(problems)}. Nothing was "
            "changed.",
            path=set_path,
            problems=problems,
            restored=[],
        )
    databases = choose_databases(module, manifest, set_path)
    result = {"path": set_path, "name": manifest.get("name"), "databases": databases, "manifest": manifest}
    if module.check_mode:
        module.exit_json(
            changed=True,
            restored=[],
            msg=f"The backup set {set_path} verifies ({len(manifest['files'])} file(s), checksums match). Would "
            f"restore {len(databases)} database(s): {', '.join(databases)}.",
            **result,
        )

    tmp_dir = params["tmp_dir"] or os.path.dirname(set_path)
    if not SOURCE_PATH_RE.match(tmp_dir):
        module.fail_json(
            msg=f"tmp_dir {tmp_dir} has characters the mariadb client's source command cannot take (use letters, "
            "digits, '_', '.', '-' and '/'): set tmp_dir. Nothing was changed.",
            restored=[],
            **result,
        )
    with MariaDBClient(module) as client:
        check_server(module, client, manifest)
        try:
            work = tempfile.mkdtemp(dir=tmp_dir, prefix=".restore-")
        except OSError as error:
            module.fail_json(msg=f"Cannot create a directory in {tmp_dir}: {error}. Nothing was changed.", **result)
        try:
            unpacked = unpack_all(module, set_path, manifest, databases, work)
            restored = []
            for index, db in enumerate(databases):
                rc, output = client.source(unpacked[db])
                if rc != 0:
                    module.fail_json(
                        msg=f"Restoring {db} failed (mariadb exited with {rc}): {output}. Restored before it: "
                        f"{', '.join(restored) or 'none'}; {db} may be dropped or partly loaded; not attempted: "
                        f"{', '.join(databases[index + 1 :]) or 'none'}. Fix the cause and run the restore again.",
                        changed=True,
                        restored=restored,
                        failed=db,
                        pending=databases[index + 1 :],
                        **result,
                    )
                restored.append(db)
        finally:
            shutil.rmtree(work, ignore_errors=True)

    module.exit_json(
        changed=True,
        restored=restored,
        msg=f"Restored {len(restored)} database(s) ({', '.join(restored)}) from {set_path}.",
        **result,
    )


if __name__ == "__main__":
    main()

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keystone_keys
short_description: Rotate keystone's fernet token and credential keys on one controller and copy them to the others
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - Runs on a keystone controller as Stackwright deploys it. The fernet token keys are in C(/etc/keystone/fernet-keys)
    and the credential keys in C(/etc/keystone/credential-keys), one file per key, named by its index. Files are
    0600 and directories 0700, owned by C(keystone).
  - Index 0 is the staged key (the next primary key), the highest index is the primary key (it encrypts) and the
    others are secondary keys (they only decrypt). Every controller must hold the same keys, or a token issued by one
    fails on another. keystone reads the key files on every request, so no service restarts after a change.
  - O(state=status) reports each repository (indices, sha256 checksums, ages, problems) and never changes anything.
    The checksums can be compared across controllers without showing a key.
  - >-
    O(state=rotated) rotates the repositories on this host as C(keystone-manage fernet_rotate) and
    C(credential_rotate) do: the staged key becomes the primary key under the next index, a new staged key 0 is
    made and the oldest secondary keys are removed so that C([fernet_tokens] max_active_keys) keys remain (three
    for credentials). Copy the result to the other controllers with O(state=present) before the next rotation.
  - >-
    A fernet rotation is refused when it would remove a key that signed a token which is still usable: tokens live
    for C([token] expiration) plus C([token] allow_expired_window) seconds (read from O(config_file), keystone's
    defaults when unset). Once the repository is full, that allows one rotation every
    token lifetime divided by C(max_active_keys - 2) seconds (RV(settings.min_interval)). The message
    says when the rotation becomes safe and which C(max_active_keys) would allow the asked pace. O(force=true)
    rotates anyway.
  - >-
    O(state=present) writes exactly the keys in O(key_material), taken from O(state=rotated) or O(state=status)
    with O(return_keys=true) on another controller. Missing or different files are written, extra files removed,
    owner, mode and, with O(key_mtimes), the times of the files set. It reports C(changed) only when a file or the
    directory differs.
  - Every file is written to a temporary file in the same directory and renamed over the key, higher indices first
    and the staged key last, so keystone never reads a partial key or misses the key that signs.
options:
  state:
    description:
      - V(status) reports the repositories and never changes anything.
      - V(rotated) rotates the repositories on this host, unless the rotation is not safe yet.
      - V(present) makes the repositories hold exactly O(key_material).
    type: str
    choices: [status, rotated, present]
    default: status
  repositories:
    description:
      - The repositories to report, rotate or write.
      - >-
        Before a rotation of V(credential), every credential must be encrypted with the current primary key
        (C(keystone-manage credential_migrate)): once the repository holds three keys a rotation removes the oldest
        one, and credentials still encrypted with it could no longer be read. The module cannot see the database;
        C(playbooks/rotate-keys.yml) runs the migration first.
    type: list
    elements: str
    choices: [fernet, credential]
    default: [fernet, credential]
  key_material:
    description:
      - >-
        With O(state=present), the keys to write, as RV(key_material) returns them, C({index: key}) per repository.
        Every repository in O(repositories) needs its keys here.
      - Secret. Pass it from a registered result and set C(no_log) on the task.
    type: dict
    suboptions:
      fernet:
        description: "The fernet token keys, C({index: key})."
        type: dict
      credential:
        description: "The credential keys, C({index: key})."
        type: dict
  key_mtimes:
    description:
      - With O(state=present), the modification times to give the key files, as RV(key_mtimes) returns them, so that
        a later rotation on this host judges the age of each key as the controller that made it did.
      - Without it, a written file gets the current time and an unchanged file keeps its own.
    type: dict
    suboptions:
      fernet:
        description: "C({index: seconds since the epoch}) of the fernet keys."
        type: dict
      credential:
        description: "C({index: seconds since the epoch}) of the credential keys."
        type: dict
  return_keys:
    description:
      - With O(state=status) or O(state=rotated), return the keys in RV(key_material) for O(state=present) on the
        other controllers. Set C(no_log) on the task.
    type: bool
    default: false
  force:
    description:
      - With O(state=rotated), rotate even when a removed fernet key may have signed a token that is still usable;
        keystone then refuses those tokens.
      - With O(state=present), write the keys even when they do not hold this host's primary key (this host rotated
        on its own, or the keys come from a controller that missed a rotation); tokens or credentials this host
        encrypted with it can no longer be read.
    type: bool
    default: false
  fernet_path:
    description:
      - The fernet token key repository, C([fernet_tokens] key_repository) in keystone.conf.
    type: path
    default: /etc/keystone/fernet-keys
  credential_path:
    description:
      - The credential key repository, C([credential] key_repository) in keystone.conf.
    type: path
    default: /etc/keystone/credential-keys
  config_file:
    description:
      - keystone's configuration, read for C([token] expiration), C([token] allow_expired_window) and
        C([fernet_tokens] max_active_keys).
      - A fernet rotation fails when the file cannot be read; the other states then use keystone's defaults and warn.
    type: path
    default: /etc/keystone/keystone.conf
  owner:
    description:
      - The user that owns the directories and key files (keystone reads them as this user).
    type: str
    default: keystone
  group:
    description:
      - The group of the directories and key files.
    type: str
    default: keystone
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: >-
      O(state=rotated) applies every check, reports C(changed) and the repositories the rotation would leave (with a
      staged key that is never written); O(state=present) reports what it would write and remove.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root (C(become)) to read the keys and set their owner.
  - >-
    The age of a key comes from its file's modification time: a rotation renames the staged key and keeps its time,
    so the time of each key is when it was made as staged key. Pass O(key_mtimes) when copying keys, or a copy's
    keys look new and a later rotation on that host is refused longer than needed (never the reverse).
  - Rotate on one controller only, and copy its keys to all others before the next rotation; the staged key makes a
    rotation safe while the copy is under way, since every controller already holds the next primary key.
  - C(playbooks/rotate-keys.yml) in Stackwright does all of this for the controller group.
seealso:
  - name: keystone, fernet key rotation
    description: How keystone uses the staged, primary and secondary keys, and how many keys it needs.
    link: https://docs.openstack.org/keystone/latest/admin/fernet-token-faq.html
"""

EXAMPLES = r"""
- name: Report the key repositories of every controller
  stackwright.cloud.keystone_keys:
  become: true
  register: keys_before

# Rotate on one controller and copy the result to the others.
- name: Re-encrypt every credential with the current primary key, so the rotation removes no key still in use
  ansible.builtin.command:
    argv: [runuser, -u, keystone, --, /openstack/venvs/keystone-30.0.0/bin/keystone-manage, credential_migrate]
  changed_when: true
  run_once: true
  delegate_to: ctl1

- name: Rotate the keys on ctl1
  stackwright.cloud.keystone_keys:
    state: rotated
    return_keys: true
  run_once: true
  delegate_to: ctl1
  register: keys_rotated
  no_log: true

- name: Write the keys of ctl1 on the other controllers
  stackwright.cloud.keystone_keys:
    state: present
    key_material: "{{ keys_rotated.key_material }}"
    key_mtimes: "{{ keys_rotated.key_mtimes }}"
  when: inventory_hostname != 'ctl1'
  no_log: true

# Only the fernet keys; a daily job that must not fail when the rotation is not due yet.
- name: Rotate the fernet keys when it is safe
  stackwright.cloud.keystone_keys:
    state: rotated
    repositories: [fernet]
  register: fernet_rotation
  failed_when: fernet_rotation is failed and 'Refusing' not in fernet_rotation.msg
"""

RETURN = r"""
repositories:
  description:
    - Each repository asked for in O(repositories), after the change (the planned one in check mode).
    - Never holds a key, only its checksum.
  returned: always
  type: dict
  contains:
    fernet:
      description: The fernet token keys; the same fields for C(credential).
      type: dict
      contains:
        path:
          description: The directory.
          type: str
          sample: /etc/keystone/fernet-keys
        exists:
          description: Whether the directory exists.
          type: bool
          sample: true
        indices:
          description: The indices of the keys, ascending.
          type: list
          elements: int
          sample: [0, 4, 5]
        primary:
          description: The index of the primary key; null when the repository holds no key above 0.
          type: int
          sample: 5
        checksums:
          description: The sha256 of each key (stripped, as keystone reads it), by index; equal on every controller.
          type: dict
          sample: {"0": "9c1185a5c5e9fc54612808977ee8f548b2258d31b2d0e43dba8a1d1b1f0b2cd3"}
        ages:
          description: Seconds since each key was made as staged key (its file's modification time), by index.
          type: dict
          sample: {"0": 3600, "4": 176400, "5": 90000}
        last_rotation:
          description: When the staged key was made, i.e. the last rotation (UTC, ISO 8601); null without one.
          type: str
          sample: "2026-05-09T12:00:00Z"
        problems:
          description: What is wrong with the repository (no staged key, a file that is not a key, owner or mode).
          type: list
          elements: str
          sample: ["key 4: mode 0644, expected 0600"]
        next_rotation:
          description: What the next rotation would do.
          type: dict
          contains:
            removes:
              description: The indices it would remove.
              type: list
              elements: int
              sample: [4]
            safe_after:
              description: >-
                For fernet keys, when it stops removing a key that a usable token needs (UTC, ISO 8601); null when it
                is safe now or cannot be planned.
              type: str
              sample: "2026-05-11T13:00:00Z"
            error:
              description: Why no rotation can be planned; null otherwise.
              type: str
              sample: null
settings:
  description: What keystone.conf says about tokens, with keystone's defaults for what it does not set.
  returned: always
  type: dict
  contains:
    token_expiration:
      description: "C([token] expiration), seconds."
      type: int
      sample: 3600
    allow_expired_window:
      description: "C([token] allow_expired_window), seconds."
      type: int
      sample: 172800
    max_active_keys:
      description: "C([fernet_tokens] max_active_keys)."
      type: int
      sample: 3
    token_lifetime:
      description: How long a token can be used, the sum of the two durations.
      type: int
      sample: 176400
    min_interval:
      description: >-
        The shortest gap between rotations that never removes a needed key once the repository is full; null when
        no gap is enough (C(max_active_keys) below 3).
      type: int
      sample: 176400
    defaults_used:
      description: The settings that keystone.conf does not set (or all of them when it cannot be read).
      type: list
      elements: str
      sample: [allow_expired_window]
rotation:
  description: What the rotation did to each repository.
  returned: O(state=rotated)
  type: dict
  sample: {"fernet": {"promoted_to": 6, "removed": [4], "after": [0, 5, 6]}}
changes:
  description: What was changed, or would be in check mode, one line per file or directory; never a key.
  returned: O(state=rotated) and O(state=present)
  type: list
  elements: str
  sample: ["fernet: write key 6", "fernet: write key 0", "fernet: remove key 4"]
key_material:
  description:
    - "The keys, C({index: key}) per repository, for O(key_material) on the other controllers."
    - Secret; set C(no_log) on the task.
  returned: O(return_keys=true) with O(state=status) or O(state=rotated)
  type: dict
key_mtimes:
  description: >-
    The modification time of each key file, C({index: seconds since the epoch}) per repository, for O(key_mtimes).
  returned: O(state=status) and O(state=rotated)
  type: dict
  sample: {"fernet": {"0": 1778328000, "5": 1778241600}}
msg:
  description: What was done, or would be done in check mode.
  returned: always
  type: str
  sample: "fernet: rotated, key 6 is the primary key, key 4 removed"
"""

import grp
import os
import pwd
import stat
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stackwright.cloud.plugins.module_utils import fernet_keys as fk
from ansible_collections.stackwright.cloud.plugins.module_utils.files import write_atomically

NAMES = ("fernet", "credential")
KEY_MODE = 0o600
DIR_MODE = 0o700

ARGUMENT_SPEC = {
    "state": {"type": "str", "choices": ["status", "rotated", "present"], "default": "status"},
    "repositories": {
        "type": "list",
        "elements": "str",
        "choices": list(NAMES),
        "default": list(NAMES),
    },
    "key_material": {
        "type": "dict",
        "no_log": True,
        "options": {"fernet": {"type": "dict", "no_log": True}, "credential": {"type": "dict", "no_log": True}},
    },
    "key_mtimes": {
        "type": "dict",
        "no_log": False,
        "options": {"fernet": {"type": "dict"}, "credential": {"type": "dict"}},
    },
    "return_keys": {"type": "bool", "default": False, "no_log": False},
    "force": {"type": "bool", "default": False},
    "fernet_path": {"type": "path", "default": "/etc/keystone/fernet-keys"},
    "credential_path": {"type": "path", "default": "/etc/keystone/credential-keys"},
    "config_file": {"type": "path", "default": "/etc/keystone/keystone.conf"},
    "owner": {"type": "str", "default": "keystone"},
    "group": {"type": "str", "default": "keystone"},
}


def utc(timestamp):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))


def duration(seconds):
    seconds = int(seconds)
    if seconds < 3600:
        return f"{seconds} s"
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h {rest // 60:02d} min" if rest >= 60 else f"{hours} h"


class KeyHost:
    """This controller's key repositories: reading, planning a change and applying it."""

    def __init__(self, module):
        self.module = module
        self.params = module.params
        self.paths = {"fernet": self.params["fernet_path"], "credential": self.params["credential_path"]}
        # The order of NAMES, whatever the order asked.
        self.names = [name for name in NAMES if name in self.params["repositories"]]
        self.now = time.time()
        self.ids = self.owner_ids()

    def fail(self, msg, **result):
        self.module.fail_json(msg=msg, **result)

    def owner_ids(self):
        """(uid, gid) of owner and group; None when they do not exist (only status can do without)."""
        try:
            return pwd.getpwnam(self.params["owner"]).pw_uid, grp.getgrnam(self.params["group"]).gr_gid
        except KeyError:
            if self.params["state"] != "status":
                self.fail(
                    f"User {self.params['owner']} or group {self.params['group']} does not exist on this host: deploy "
                    "keystone first, or set owner and group to the user keystone runs as."
                )
            return None

    # --- reading -----------------------------------------------------------------------------------------------------

    def settings(self, required):
        path = self.params["config_file"]
        try:
            with open(path, encoding="utf-8") as handle:
                parsed = fk.read_keystone_settings(handle.read())
        except FileNotFoundError:
            if required:
                self.fail(
                    f"{path} does not exist: the token lifetime that decides whether a rotation is safe is unknown. "
                    "Run the module on a keystone controller, or set config_file. Nothing was changed."
                )
            self.module.warn(f"{path} does not exist: keystone's defaults are reported.")
            parsed = dict.fromkeys(fk.KEYSTONE_DEFAULTS)
        except PermissionError:
            self.fail(f"Cannot read {path}: run the task with become: true.")
        except fk.KeyRepositoryError as error:
            self.fail(f"{error} Fix {path}. Nothing was changed.")
        values = {name: fk.KEYSTONE_DEFAULTS[name] if value is None else value for name, value in parsed.items()}
        lifetime = values["token_expiration"] + values["allow_expired_window"]
        return {
            **values,
            "token_lifetime": lifetime,
            "min_interval": fk.safe_rotation_interval(lifetime, values["max_active_keys"]),
            "defaults_used": sorted(name for name, value in parsed.items() if value is None),
        }

    def read(self, name):
        """The repository as it is: {path, exists, keys: {index: text}, stats: {index: stat}, dir_stat}."""
        path = self.paths[name]
        repo = {"name": name, "path": path, "exists": False, "keys": {}, "stats": {}, "dir_stat": None}
        try:
            repo["dir_stat"] = os.stat(path)
        except FileNotFoundError:
            return repo
        except PermissionError:
            self.fail(f"Cannot read {path}: run the task with become: true.")
        if not stat.S_ISDIR(repo["dir_stat"].st_mode):
            self.fail(f"{path} is not a directory: move it away, then write the keys with state=present.")
        repo["exists"] = True
        try:
            for index, file_path in fk.list_key_files(path).items():
                with open(file_path, "rb") as handle:
                    repo["keys"][index] = handle.read().decode("ascii", "replace")
                repo["stats"][index] = os.stat(file_path)
        except PermissionError as error:
            self.fail(f"Cannot read {error.filename or path}: run the task with become: true.")
        return repo

    def ownership_problems(self, stat_result, mode):
        problems = []
        if stat_result.st_mode & 0o7777 != mode:
            problems.append(f"mode {stat_result.st_mode & 0o7777:04o}, expected {mode:04o}")
        if self.ids and (stat_result.st_uid, stat_result.st_gid) != self.ids:
            problems.append(f"owner {stat_result.st_uid}:{stat_result.st_gid}, expected {self.params['owner']}:"
                            f"{self.params['group']}")  # fmt: skip
        return problems

    def problems(self, repo):
        if not repo["exists"]:
            return [f"{repo['path']} does not exist"]
        problems = [f"directory: {text}" for text in self.ownership_problems(repo["dir_stat"], DIR_MODE)]
        for index in sorted(repo["keys"]):
            if not fk.is_valid_key(repo["keys"][index]):
                problems.append(f"key {index}: not a Fernet key")
            problems.extend(f"key {index}: {text}" for text in self.ownership_problems(repo["stats"][index], KEY_MODE))
        if fk.STAGED not in repo["keys"]:
            problems.append("no staged key 0")
        if not [index for index in repo["keys"] if index != fk.STAGED]:
            problems.append("no primary key")
        return problems

    def max_keys(self, name, settings):
        return settings["max_active_keys"] if name == "fernet" else fk.CREDENTIAL_MAX_ACTIVE_KEYS

    def next_rotation(self, repo, settings, keys, mtimes):
        try:
            plan = fk.plan_rotation(keys, self.max_keys(repo["name"], settings))
        except fk.KeyRepositoryError as error:
            return {"removes": [], "safe_after": None, "error": str(error)}
        safe_after = None
        if repo["name"] == "fernet":
            unsafe = fk.unsafe_removals(plan["removed"], list(keys), mtimes, self.now, settings["token_lifetime"])
            if unsafe:
                safe_after = utc(self.now + settings["token_lifetime"] - min(unsafe.values()))
        return {"removes": plan["removed"], "safe_after": safe_after, "error": None}

    def describe(self, repo, settings, planned=None):
        """What state=status returns for a repository, or for the one a change plans: planned=(keys, mtimes)."""
        if planned is None:
            keys, mtimes = repo["keys"], {index: st.st_mtime for index, st in repo["stats"].items()}
        else:
            keys, mtimes = planned
        secondaries = [index for index in keys if index != fk.STAGED]
        return {
            "path": repo["path"],
            "exists": repo["exists"] or planned is not None,
            "indices": sorted(keys),
            "primary": max(secondaries) if secondaries else None,
            "checksums": {str(index): fk.key_checksum(keys[index]) for index in sorted(keys)},
            "ages": {str(index): int(self.now - mtimes[index]) for index in sorted(keys)},
            "last_rotation": utc(mtimes[fk.STAGED]) if fk.STAGED in mtimes else None,
            "problems": self.problems(repo) if planned is None else [],
            "next_rotation": self.next_rotation(repo, settings, keys, mtimes),
        }

    # --- changing ----------------------------------------------------------------------------------------------------

    def plan_changes(self, repo, desired, mtimes):
        """[(action, index)] that make the repository hold exactly `desired` ({index: key}).

        Highest index first and the staged key last: the key that will sign is in place before anything refers to
        it, and removals come after every write.
        """
        changes = []
        if not repo["exists"]:
            changes.append(("mkdir", None))
        elif self.ownership_problems(repo["dir_stat"], DIR_MODE):
            changes.append(("fixdir", None))
        for index in sorted(desired, key=lambda i: (i == fk.STAGED, -i)):
            current = repo["keys"].get(index)
            if current is None or current.strip() != desired[index]:
                changes.append(("write", index))
                continue
            wanted = mtimes.get(index)
            if self.ownership_problems(repo["stats"][index], KEY_MODE) or (
                wanted is not None and int(repo["stats"][index].st_mtime) != wanted
            ):
                changes.append(("fix", index))
        changes.extend(("remove", index) for index in sorted(set(repo["keys"]) - set(desired)))
        return changes

    @staticmethod
    def change_lines(name, changes):
        text = {
            "mkdir": "create the directory",
            "fixdir": "set owner and mode of the directory",
            "write": "write key {}",
            "fix": "set owner, mode or time of key {}",
            "remove": "remove key {}",
        }
        return [f"{name}: {text[action].format(index)}" for action, index in changes]

    def set_attributes(self, path, mode, mtime=None):
        os.chown(path, *self.ids)
        os.chmod(path, mode)
        if mtime is not None:
            os.utime(path, (mtime, mtime))

    def write_key(self, directory, index, key, mtime):
        """Written whole, then renamed into place: keystone never reads a partial key."""
        write_atomically(
            os.path.join(directory, str(index)),
            key,
            encoding="ascii",
            prepare=lambda tmp_path: self.set_attributes(tmp_path, KEY_MODE, mtime),
        )

    def apply(self, repo, desired, mtimes, changes):
        path = repo["path"]
        try:
            for action, index in changes:
                if action == "mkdir":
                    os.mkdir(path, DIR_MODE)
                    self.set_attributes(path, DIR_MODE)
                elif action == "fixdir":
                    self.set_attributes(path, DIR_MODE)
                elif action == "write":
                    self.write_key(path, index, desired[index], mtimes.get(index))
                elif action == "fix":
                    self.set_attributes(os.path.join(path, str(index)), KEY_MODE, mtimes.get(index))
                else:
                    os.unlink(os.path.join(path, str(index)))
            # The renames survive a crash only once the directory is on disk.
            dir_handle = os.open(path, os.O_RDONLY)
            try:
                os.fsync(dir_handle)
            finally:
                os.close(dir_handle)
        except OSError as error:
            self.fail(
                f"Writing {path} failed: {error}. The repository may be half changed: run the task again, or copy the "
                "keys of another controller with state=present.",
                changed=True,
            )


def key_result(host, repos, keys=None, mtimes=None):
    """key_mtimes and, with return_keys, key_material, for the repositories as they are (or planned)."""
    result = {"key_mtimes": {}}
    if host.params["return_keys"]:
        result["key_material"] = {}
    for name in host.names:
        repo_keys = repos[name]["keys"] if keys is None else keys[name]
        repo_mtimes = (
            {index: st.st_mtime for index, st in repos[name]["stats"].items()} if mtimes is None else mtimes[name]
        )
        result["key_mtimes"][name] = {str(index): int(repo_mtimes[index]) for index in sorted(repo_keys)}
        if host.params["return_keys"]:
            result["key_material"][name] = {str(index): repo_keys[index].strip() for index in sorted(repo_keys)}
    return result


def status(host):
    settings = host.settings(required=False)
    repos = {name: host.read(name) for name in host.names}
    described = {name: host.describe(repos[name], settings) for name in host.names}
    summary = "; ".join(
        f"{name}: {len(info['indices'])} keys, primary {info['primary']}, last rotation {info['last_rotation']}"
        + (f", problems: {', '.join(info['problems'])}" if info["problems"] else "")
        for name, info in described.items()
    )
    host.module.exit_json(
        changed=False, repositories=described, settings=settings, msg=summary, **key_result(host, repos)
    )


def refusal(name, unsafe, settings, last_rotation_age):
    """The message of a refused fernet rotation: why, until when, and what the operator can do."""
    # The key that stopped signing last is needed longest.
    index = min(unsafe, key=unsafe.get)
    lifetime = settings["token_lifetime"]
    interval = settings["min_interval"]
    if interval is None:
        pace = f"with {settings['max_active_keys']} keys every rotation removes the key that signed until then"
    else:
        pace = f"with {settings['max_active_keys']} keys rotations must be at least {duration(interval)} apart"
    needed = fk.minimum_active_keys(
        settings["token_expiration"], settings["allow_expired_window"], max(1, int(last_rotation_age))
    )
    more_keys = (
        f", or set [fernet_tokens] max_active_keys (keystone_fernet_max_active_keys) to {needed} to rotate this often"
        # Below an hour apart it is a repeated run, not a pace to configure.
        if needed > settings["max_active_keys"] and last_rotation_age >= 3600
        else ""
    )
    return (
        f"Refusing to rotate the {name} keys: the rotation would remove key "
        f"{', '.join(str(i) for i in sorted(unsafe))}, and key {index} stopped signing tokens only "
        f"{duration(unsafe[index])} ago, while tokens stay usable for {duration(lifetime)} ([token] expiration "
        f"{settings['token_expiration']} s + allow_expired_window {settings['allow_expired_window']} s). Rotate in "
        f"{duration(lifetime - unsafe[index])} or later ({pace}){more_keys}. force=true rotates anyway, and keystone "
        "then refuses the tokens that key signed. Nothing was changed."
    )


def rotated(host):
    module = host.module
    settings = host.settings(required="fernet" in host.names)
    repos = {name: host.read(name) for name in host.names}
    plans, desired, mtimes, changes = {}, {}, {}, {}
    # Every check passes for every repository before the first file is written.
    for name in host.names:
        repo = repos[name]
        invalid = sorted(index for index, key in repo["keys"].items() if not fk.is_valid_key(key))
        if invalid:
            host.fail(
                f"Refusing to rotate the {name} keys: key {', '.join(map(str, invalid))} in {repo['path']} is not a "
                "Fernet key. Copy the keys of a healthy controller with state=present. Nothing was changed."
            )
        try:
            plan = fk.plan_rotation(repo["keys"], host.max_keys(name, settings))
        except fk.KeyRepositoryError as error:
            host.fail(f"Refusing to rotate the {name} keys in {repo['path']}: {error} Nothing was changed.")
        file_mtimes = {index: st.st_mtime for index, st in repo["stats"].items()}
        if name == "fernet" and not host.params["force"]:
            unsafe = fk.unsafe_removals(
                plan["removed"], list(repo["keys"]), file_mtimes, host.now, settings["token_lifetime"]
            )
            if unsafe:
                host.fail(
                    refusal(name, unsafe, settings, host.now - file_mtimes[fk.STAGED]),
                    repositories={n: host.describe(repos[n], settings) for n in host.names},
                    settings=settings,
                )
        plans[name] = plan
        keys = {index: repo["keys"][index].strip() for index in plan["after"] if index in repo["keys"]}
        keys[plan["promoted_to"]] = repo["keys"][fk.STAGED].strip()
        keys[fk.STAGED] = fk.generate_key()
        desired[name] = keys
        # The promoted key keeps the time it was made as staged key (what a rename does); the new one is made now.
        mtimes[name] = {plan["promoted_to"]: int(file_mtimes[fk.STAGED]), fk.STAGED: int(host.now)}
        changes[name] = host.plan_changes(repo, keys, mtimes[name])

    lines = [line for name in host.names for line in host.change_lines(name, changes[name])]
    verb = "would rotate" if module.check_mode else "rotated"
    msg = "; ".join(
        f"{name}: {verb}, key {plan['promoted_to']} is the primary key"
        + (f", key {', '.join(map(str, plan['removed']))} removed" if plan["removed"] else "")
        for name, plan in plans.items()
    )
    if module.check_mode:
        planned_mtimes = {
            name: {
                index: mtimes[name].get(index, repos[name]["stats"][index].st_mtime if index in repos[name]["stats"]
                                        else host.now)
                for index in desired[name]
            }
            for name in host.names
        }  # fmt: skip
        module.exit_json(
            changed=True,
            msg=msg,
            rotation=plans,
            changes=lines,
            settings=settings,
            repositories={n: host.describe(repos[n], settings, (desired[n], planned_mtimes[n])) for n in host.names},
            **key_result(host, repos, desired, planned_mtimes),
        )
    for name in host.names:
        host.apply(repos[name], desired[name], mtimes[name], changes[name])
    after = {name: host.read(name) for name in host.names}
    module.exit_json(
        changed=True,
        msg=msg,
        rotation=plans,
        changes=lines,
        settings=settings,
        repositories={name: host.describe(after[name], settings) for name in host.names},
        **key_result(host, after),
    )


def parse_mtimes(name, given, indices):
    parsed = {}
    for index, value in (given or {}).items():
        if not fk.KEY_NAME.match(str(index)):
            raise fk.KeyRepositoryError(f"key_mtimes.{name}: {index!r} is not a key index.")
        try:
            if isinstance(value, bool):
                raise TypeError(value)
            parsed[int(str(index))] = int(value)
        except (TypeError, ValueError) as error:
            raise fk.KeyRepositoryError(f"key_mtimes.{name}[{index}] = {value!r} is not a time in seconds.") from error
    # Times of keys that are not written do not matter.
    return {index: value for index, value in parsed.items() if index in indices}


def present(host):
    module = host.module
    material = host.params["key_material"] or {}
    given_mtimes = host.params["key_mtimes"] or {}
    repos = {name: host.read(name) for name in host.names}
    desired, mtimes, changes = {}, {}, {}
    for name in host.names:
        repo = repos[name]
        try:
            if material.get(name) is None:
                raise fk.KeyRepositoryError(
                    f"key_material.{name} is missing: pass the keys of every repository in repositories "
                    f"({', '.join(host.names)}), or name fewer repositories."
                )
            keys = fk.validate_key_set(name, material[name])
            mtimes[name] = parse_mtimes(name, given_mtimes.get(name), keys)
        except fk.KeyRepositoryError as error:
            host.fail(f"{error} Nothing was changed.")
        # This host's primary key encrypted its recent tokens or credentials: they must stay readable.
        local = [index for index, key in repo["keys"].items() if index != fk.STAGED and fk.is_valid_key(key)]
        if local and not host.params["force"]:
            primary = max(local)
            if repo["keys"][primary].strip() not in keys.values():
                host.fail(
                    f"Refusing to write the {name} keys: they do not hold this host's primary key {primary} "
                    f"(sha256 {fk.key_checksum(repo['keys'][primary])}), so what this host encrypted with it could no "
                    "longer be read. Either this host rotated on its own or the keys come from a controller that "
                    "missed a rotation: compare the checksums of every controller (state=status) and copy from the "
                    "one with the newest keys, or pass force=true. Nothing was changed."
                )
        desired[name] = keys
        changes[name] = host.plan_changes(repo, keys, mtimes[name])

    lines = [line for name in host.names for line in host.change_lines(name, changes[name])]
    changed = bool(lines)
    if changed and not module.check_mode:
        for name in host.names:
            if changes[name]:
                host.apply(repos[name], desired[name], mtimes[name], changes[name])
    settings = host.settings(required=False)
    if module.check_mode:
        described = {}
        for name in host.names:
            stats = repos[name]["stats"]
            planned = {
                index: mtimes[name].get(index, stats[index].st_mtime if ("write", index) not in changes[name]
                                        else host.now)
                for index in desired[name]
            }  # fmt: skip
            described[name] = host.describe(repos[name], settings, (desired[name], planned))
    else:
        described = {name: host.describe(host.read(name), settings) for name in host.names}
    if not changed:
        msg = "The keys are already in place."
    else:
        msg = ("Would change: " if module.check_mode else "Changed: ") + "; ".join(lines)
    module.exit_json(changed=changed, msg=msg, changes=lines, repositories=described, settings=settings)


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_if=[("state", "present", ["key_material"])],
        supports_check_mode=True,
    )
    host = KeyHost(module)
    {"status": status, "rotated": rotated, "present": present}[module.params["state"]](host)


if __name__ == "__main__":
    main()

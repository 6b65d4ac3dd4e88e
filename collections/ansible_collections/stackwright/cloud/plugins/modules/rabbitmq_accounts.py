# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rabbitmq_accounts
short_description: Keep many RabbitMQ users, vhosts and permissions in line in one call
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Runs on a member of a RabbitMQ cluster and brings every account of O(accounts) in line at once: its vhost
    exists, its user exists with the given password and tags, and the user has the given permissions on the vhost.
    Users, vhosts and permissions are replicated across the cluster, so one member applies them for all
    (C(run_once)).
  - >-
    It reads the whole state with a single C(rabbitmqctl export_definitions - --format json) (users with their
    password hashes, vhosts, permissions). Every C(rabbitmqctl) call starts an Erlang VM, about a second each, so a
    run where everything is in place costs one call however many accounts there are, where
    C(community.rabbitmq.rabbitmq_vhost) and C(community.rabbitmq.rabbitmq_user) spend several calls per account.
  - >-
    A password is checked against the exported hash locally, as RabbitMQ checks it: base64 of a 4-byte salt
    followed by the hash of the salt plus the UTF-8 password, with SHA-256, SHA-512 or MD5 after the user's
    C(hashing_algorithm). Only for a hashing module it does not know does it ask the node
    (C(rabbitmqctl authenticate_user), one call for that user).
  - >-
    Then it applies only what makes a difference (missing vhosts, new users, changed passwords and tags, missing or
    different permissions) with one C(rabbitmqctl import_definitions) call, whatever their number: a fresh cluster
    costs two calls where C(add_vhost), C(add_user), C(set_user_tags) and C(set_permissions) would cost one each per
    account. A new or changed password is imported as its salted hash (SHA-256 for a new user, the user's own
    hashing module for a changed one), so it never appears on a command line.
  - It never deletes a user, a vhost or a permission, nor touches users and vhosts that O(accounts) does not name.
options:
  accounts:
    description:
      - The accounts, one per user and vhost. A user may appear several times, once per vhost it gets permissions
        on, with the same password and tags each time.
    type: list
    elements: dict
    required: true
    suboptions:
      user:
        description: The user name.
        type: str
        required: true
      password:
        description:
          - The user's password. It is never returned, logged or shown in a message.
          - Only its salted hash leaves the module, in a file that the user running C(rabbitmqctl) alone can read
            and that is removed right after the import.
        type: str
        required: true
      vhost:
        description: The vhost, created when missing, on which the user gets the permissions below.
        type: str
        required: true
      configure_priv:
        description: The configure permission, a regular expression over resource names.
        type: str
        default: .*
      write_priv:
        description: The write permission, a regular expression over resource names.
        type: str
        default: .*
      read_priv:
        description: The read permission, a regular expression over resource names.
        type: str
        default: .*
      tags:
        description:
          - The user's tags (for example V(administrator), V(monitoring)); exactly these are set.
          - An empty list removes all tags of an existing user.
        type: list
        elements: str
        default: []
      update_password:
        description:
          - O(update_password) for this user alone, so one call can keep some passwords and apply others.
          - Without it the user follows O(update_password).
        type: str
        choices: [always, on_create]
  update_password:
    description:
      - V(always) checks the password of every existing user against its stored hash and changes it when the
        secret differs, so a rotated secret is applied and an unchanged one costs nothing.
      - V(on_create) sets the password only when it creates the user. An existing user's password is still compared
        with its stored hash, where that needs no C(rabbitmqctl) call, but only to report it in RV(in_line).
    type: str
    choices: [always, on_create]
    default: always
  rabbitmqctl:
    description:
      - The C(rabbitmqctl) to run, a name looked up in the PATH and the usual sbin directories, or an absolute path.
    type: str
    default: rabbitmqctl
  node:
    description:
      - The node to ask, passed to C(rabbitmqctl) as C(-n).
      - By default C(rabbitmqctl) asks the local node that C(/etc/rabbitmq/rabbitmq-env.conf) names.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Reads the definitions (and asks C(authenticate_user) where needed) and reports what it would change.
  diff_mode:
    support: none
  platform:
    platforms: posix
notes:
  - Needs root (C(become)); the Debian wrapper of C(rabbitmqctl) switches to the C(rabbitmq) user and its Erlang
    cookie.
  - C(rabbitmqctl) reads standard input, so the module gives it C(/dev/null) (with SSH pipelining stdin is the
    connection).
  - The definitions to import are written to a temporary file of mode 0600 that the C(rabbitmq) user owns when the
    module runs as root (the Debian wrapper of C(rabbitmqctl) reads it as that user), and removed afterwards.
  - A failed import may have applied part of the changes; the next run applies the rest.
  - Set C(no_log) on the task as well; the module already masks the passwords, the task's own templating does not.
  - A permission is compared with what RabbitMQ stores, as text; topic permissions and user limits are not managed.
seealso:
  - module: community.rabbitmq.rabbitmq_user
  - module: community.rabbitmq.rabbitmq_vhost
  - name: RabbitMQ definitions import
    description: What C(rabbitmqctl import_definitions) applies.
    link: https://www.rabbitmq.com/docs/definitions
  - name: RabbitMQ credentials and passwords
    description: How RabbitMQ hashes and stores passwords.
    link: https://www.rabbitmq.com/docs/passwords
  - name: RabbitMQ definitions export
    description: What C(rabbitmqctl export_definitions) returns.
    link: https://www.rabbitmq.com/docs/definitions
"""

EXAMPLES = r"""
- name: Create the vhost and user of every service that uses messaging
  stackwright.cloud.rabbitmq_accounts:
    accounts:
      - user: nova
        password: "{{ nova_rabbitmq_password }}"
        vhost: nova
      - user: neutron
        password: "{{ neutron_rabbitmq_password }}"
        vhost: neutron
  become: true
  run_once: true
  no_log: true

- name: An administrator with rights on two vhosts, its password set only when it is created
  stackwright.cloud.rabbitmq_accounts:
    node: rabbit@ctl1
    update_password: on_create
    accounts:
      - user: admin
        password: "{{ rabbitmq_admin_password }}"
        vhost: /
        tags: [administrator]
      - user: admin
        password: "{{ rabbitmq_admin_password }}"
        vhost: nova
        tags: [administrator]
        configure_priv: "^$"
  become: true
  run_once: true
  no_log: true
  register: rabbitmq_accounts

- name: Show what changed (it never holds a password)
  ansible.builtin.debug:
    var: rabbitmq_accounts.actions

- name: Create the administrator and learn which users exist
  stackwright.cloud.rabbitmq_accounts:
    accounts:
      - user: admin
        password: "{{ rabbitmq_admin_password }}"
        vhost: /
        tags: [administrator]
  become: true
  run_once: true
  no_log: true
  register: admin_accounts

- name: Remove the default guest user, only where it is still there
  community.rabbitmq.rabbitmq_user:
    user: guest
    state: absent
  become: true
  run_once: true
  when: "'guest' in admin_accounts.users"
"""

RETURN = r"""
actions:
  description:
    - What was done, in order, one line per command; in check mode, what would be done. Never holds a password.
  returned: always
  type: list
  elements: str
  sample: ["created vhost nova", "created user nova", "changed password of cinder", "set permissions of nova on nova"]
msg:
  description: A summary of what was done, or would be done in check mode.
  returned: always
  type: str
  sample: "3 changes: created vhost nova; created user nova; set permissions of nova on nova"
users:
  description:
    - The names of every user of the cluster before this call, sorted, whether listed in O(accounts) or not. A play
      can act on other users with it without asking RabbitMQ again (for example remove C(guest) only if it is there).
  returned: when the definitions could be read
  type: list
  elements: str
  sample: ["admin", "guest", "nova"]
in_line:
  description:
    - The users of O(accounts) whose vhosts, password, tags and permissions are as asked when the module returns
      (in check mode, before any change), sorted.
    - A user whose password was kept (O(update_password=on_create)) is listed only when its stored hash matches the
      given password. A later task of the same run can skip its own check of these users.
  returned: when the definitions could be read
  type: list
  elements: str
  sample: ["admin", "nova"]
"""

import contextlib
import json
import os
import pwd
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.stackwright.cloud.plugins.module_utils.files import tail
from ansible_collections.stackwright.cloud.plugins.module_utils.rabbitmq_accounts import (
    AccountsError,
    group_accounts,
    in_line,
    parse_definitions,
    parse_json_output,
    password_checks_needed,
    password_matches,
    plan,
    positional,
    scrub,
)

# The Debian wrapper runs rabbitmqctl as this user when it is called as root.
RABBITMQ_USER = "rabbitmq"

# The Debian package puts the CLI tools in /usr/sbin; a become PATH does not always hold it.
BIN_DIRS = ["/usr/sbin", "/usr/bin", "/usr/lib/rabbitmq/bin", "/sbin", "/bin"]


class Rabbitmqctl:
    """rabbitmqctl of this host. Its output is parsed as it is; every message built from it has the passwords
    masked (reason())."""

    def __init__(self, module, secrets):
        self.module = module
        self.secrets = secrets
        path = module.params["rabbitmqctl"]
        if "/" in path:
            if not os.access(path, os.X_OK):
                module.fail_json(msg=f"{path} (option rabbitmqctl) is not an executable file.")
            self.path = path
        else:
            self.path = module.get_bin_path(path, required=True, opt_dirs=BIN_DIRS)

    def run(self, *args):
        argv = [self.path]
        if self.module.params["node"]:
            argv += ["-n", self.module.params["node"]]
        return self.module.run_command([*argv, "-q", *args])

    def reason(self, rc, out, err):
        """The end of what a failed command printed, passwords masked (a CLI may echo its arguments)."""
        return scrub(tail(err or out, 5), self.secrets) or f"exit {rc}"

    def definitions(self):
        rc, out, err = self.run("export_definitions", "-", "--format", "json")
        data = parse_json_output(out) if rc == 0 else None
        if data is None:
            self.module.fail_json(
                msg=f"rabbitmqctl export_definitions failed (exit {rc}): {self.reason(rc, out, err)}. Is the node "
                "running (rabbitmqctl status)? Nothing was changed.",
                changed=False,
                actions=[],
            )
        try:
            return parse_definitions(data)
        except AccountsError as error:
            self.module.fail_json(msg=f"Cannot read the exported definitions: {error}", changed=False, actions=[])

    def import_definitions(self, definitions):
        """Import the document from a file that only the CLI's user can read; removed whatever happens."""
        fd, path = tempfile.mkstemp(prefix="stackwright-rabbitmq-", suffix=".json")
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(definitions, handle)
            # Without that user, rabbitmqctl runs as root and reads the file as it is.
            if os.geteuid() == 0:
                with contextlib.suppress(KeyError):
                    os.chown(path, pwd.getpwnam(RABBITMQ_USER).pw_uid, -1)
            return self.run("import_definitions", path)
        finally:
            os.unlink(path)

    def authenticates(self, user, password):
        """Whether the node accepts this password for the user (authenticate_user exits non-zero when not)."""
        rc, _out, _err = self.run("authenticate_user", *positional([user, password]))
        return rc == 0


def detach_stdin():
    """Give rabbitmqctl /dev/null as stdin: it reads it, and under SSH pipelining it is the connection."""
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)


def summary(actions, check_mode):
    if not actions:
        return "All accounts are in place."
    prefix = "Would make" if check_mode else "Made"
    return f"{prefix} {len(actions)} change{'s' if len(actions) != 1 else ''}: {'; '.join(actions)}"


def main():
    module = AnsibleModule(
        argument_spec={
            "accounts": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "user": {"type": "str", "required": True},
                    "password": {"type": "str", "required": True, "no_log": True},
                    "vhost": {"type": "str", "required": True},
                    "configure_priv": {"type": "str", "default": ".*"},
                    "write_priv": {"type": "str", "default": ".*"},
                    "read_priv": {"type": "str", "default": ".*"},
                    "tags": {"type": "list", "elements": "str", "default": []},
                    "update_password": {"type": "str", "choices": ["always", "on_create"], "no_log": False},
                },
            },
            "update_password": {
                "type": "str",
                "choices": ["always", "on_create"],
                "default": "always",
                "no_log": False,
            },
            "rabbitmqctl": {"type": "str", "default": "rabbitmqctl"},
            "node": {"type": "str"},
        },
        supports_check_mode=True,
    )
    try:
        users = group_accounts(module.params["accounts"], module.params["update_password"])
    except AccountsError as error:
        module.fail_json(msg=f"Invalid accounts: {error}. Nothing was changed.", changed=False, actions=[])
    secrets = [entry["password"] for entry in users.values()]
    detach_stdin()
    ctl = Rabbitmqctl(module, secrets)

    state = ctl.definitions()
    existing_users = sorted(state["users"])
    password_ok = {}
    for name, (stored, algorithm) in password_checks_needed(users, state).items():
        verdict = password_matches(stored, algorithm, users[name]["password"])
        if verdict is None and not users[name]["keep_existing"]:
            verdict = ctl.authenticates(name, users[name]["password"])
        if verdict is not None:
            password_ok[name] = verdict
    changes = plan(users, state, password_ok)
    planned = changes["actions"]

    if module.check_mode or not planned:
        module.exit_json(
            changed=bool(planned),
            actions=planned,
            msg=summary(planned, module.check_mode),
            users=existing_users,
            in_line=in_line(users, state, password_ok, applied=False),
        )

    rc, out, err = ctl.import_definitions(changes["definitions"])
    if rc != 0:
        module.fail_json(
            msg=f"rabbitmqctl import_definitions failed (exit {rc}): {ctl.reason(rc, out, err)}. It may have applied "
            f"part of: {'; '.join(planned)}; the next run applies what is missing.",
            changed=False,
            actions=[],
            users=existing_users,
        )
    module.exit_json(
        changed=True,
        actions=planned,
        msg=summary(planned, False),
        users=existing_users,
        in_line=in_line(users, state, password_ok, applied=True),
    )


if __name__ == "__main__":
    main()

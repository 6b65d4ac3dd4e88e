# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.rabbitmq_accounts against a simulated RabbitMQ 4.0 node (its rabbitmqctl), and the hash, parse
and plan logic of module_utils/rabbitmq_accounts.py."""

import base64
import hashlib
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.module_utils import rabbitmq_accounts as logic
from ansible_collections.stackwright.cloud.plugins.modules import rabbitmq_accounts
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module

SHA256 = "rabbit_password_hashing_sha256"
SHA512 = "rabbit_password_hashing_sha512"
MD5 = "rabbit_password_hashing_md5"
CTL = "/usr/sbin/rabbitmqctl"

NOVA_PW = "Nq7vXk2pLr9sTz4wYb6c"
NEUTRON_PW = "Hm3dFg8jKa1sQw5eRt0y"
ADMIN_PW = "Zx9cVb8nMa7sDf6gHj5k"
OLD_PW = "the-old-secret"
DASH_PW = "-dashing"
ALL_PASSWORDS = (NOVA_PW, NEUTRON_PW, ADMIN_PW)


def rabbit_hash(password, salt=b"\x1f\x2e\x3d\x4c", digest="sha256"):
    """What RabbitMQ stores, computed here straight from hashlib (not with the code under test)."""
    return base64.b64encode(salt + hashlib.new(digest, salt + password.encode("utf-8")).digest()).decode()


def hash_accepts(password_hash, algorithm, password):
    """Whether a stored hash is that of the password, checked straight with hashlib (not with the code under test)."""
    raw = base64.b64decode(password_hash)
    digest = {SHA256: "sha256", SHA512: "sha512", MD5: "md5"}[algorithm]
    return raw[4:] == hashlib.new(digest, raw[:4] + password.encode("utf-8")).digest()


class RabbitNode:
    """Answers rabbitmqctl like a RabbitMQ 4.0 node, keeping users, vhosts and permissions in memory."""

    def __init__(self):
        self.users = {
            "admin": {"password": ADMIN_PW, "algorithm": SHA256, "tags": ["administrator"]},
        }
        self.vhosts = ["/"]
        self.permissions = {("admin", "/"): (".*", ".*", ".*")}
        self.fail = {}  # command -> (rc, stdout, stderr)
        self.calls = []
        self.kwargs = []
        self.imports = []  # the documents import_definitions read
        self.import_files = []  # (path, mode) of each
        self.salt = 0x0A0B0C00

    def add(self, name, password, vhost=None, tags=(), algorithm=SHA256, perms=(".*", ".*", ".*")):
        self.users[name] = {"password": password, "algorithm": algorithm, "tags": list(tags)}
        if vhost:
            if vhost not in self.vhosts:
                self.vhosts.append(vhost)
            self.permissions[(name, vhost)] = tuple(perms)

    def _hash(self, user):
        if "hash" in user:  # imported as a hash
            return user["hash"]
        self.salt += 1
        salt = self.salt.to_bytes(4, "big")
        digest = {SHA256: "sha256", SHA512: "sha512", MD5: "md5"}.get(user["algorithm"], "sha256")
        return rabbit_hash(user["password"], salt, digest)

    def accepts(self, name, password):
        user = self.users[name]
        if "hash" in user:
            return hash_accepts(user["hash"], user["algorithm"], password)
        return user["password"] == password

    def definitions(self):
        return {
            "rabbit_version": "4.0.5",
            "rabbitmq_version": "4.0.5",
            "users": [
                {"name": name, "password_hash": self._hash(user), "hashing_algorithm": user["algorithm"],
                 "tags": list(user["tags"]), "limits": {}}
                for name, user in self.users.items()
            ],
            "vhosts": [{"name": name, "limits": [], "metadata": {"description": "", "tags": []}}
                       for name in self.vhosts],
            "permissions": [{"user": user, "vhost": vhost, "configure": c, "write": w, "read": r}
                            for (user, vhost), (c, w, r) in self.permissions.items()],
            "topic_permissions": [],
            "parameters": [],
            "global_parameters": [{"name": "cluster_name", "value": "stackwright"}],
            "policies": [],
            "queues": [{"name": "scheduler", "vhost": "nova", "durable": True, "auto_delete": False,
                        "arguments": {"x-queue-type": "quorum"}, "type": "quorum"}],
            "exchanges": [],
            "bindings": [],
        }  # fmt: skip

    def import_definitions(self, path):
        """Apply a document as RabbitMQ does: users, then vhosts, then permissions, each created or replaced."""
        self.import_files.append((path, os.stat(path).st_mode & 0o777))
        with open(path) as handle:
            doc = json.load(handle)
        self.imports.append(doc)
        assert set(doc) <= {"users", "vhosts", "permissions"}
        for user in doc.get("users", []):
            assert isinstance(user["tags"], list)
            self.users[user["name"]] = {
                "hash": user["password_hash"], "algorithm": user["hashing_algorithm"], "tags": list(user["tags"]),
            }  # fmt: skip
        for vhost in doc.get("vhosts", []):
            assert vhost["name"] not in self.vhosts, "only missing vhosts are imported"
            self.vhosts.append(vhost["name"])
        for perm in doc.get("permissions", []):
            assert perm["vhost"] in self.vhosts and perm["user"] in self.users
            self.permissions[(perm["user"], perm["vhost"])] = (perm["configure"], perm["write"], perm["read"])
        return 0, "", ""

    def run_command(self, argv, **kwargs):
        assert isinstance(argv, list), "commands are argv lists"
        assert "data" not in kwargs, "nothing goes to rabbitmqctl's stdin"
        self.calls.append(argv)
        self.kwargs.append(kwargs)
        assert argv[0] == CTL
        args = argv[1:]
        if args[0] == "-n":
            assert args[1] == "rabbit@ctl1"
            args = args[2:]
        assert args[0] == "-q", "CLI output must be quiet to be parsed"
        command, rest = args[1], args[2:]
        if command in self.fail:
            return self.fail[command]
        if command == "export_definitions":
            assert rest == ["-", "--format", "json"]
            return 0, json.dumps(self.definitions()), ""
        if command == "import_definitions":
            (path,) = rest
            return self.import_definitions(path)
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if command == "authenticate_user":
            name, password = rest
            if name in self.users and self.accepts(name, password):
                return 0, "Success\n", ""
            return (
                65,
                "",
                f"Error:\nError: failed to authenticate user \"{name}\"\nuser '{name}' - invalid credentials\n",
            )
        raise AssertionError(f"unexpected command {argv}")

    def commands(self):
        """The rabbitmqctl commands run, without the binary and -q."""
        result = []
        for argv in self.calls:
            args = argv[1:]
            if args[0] == "-n":
                args = args[2:]
            result.append(args[1:])
        return result

    def writes(self):
        return [cmd for cmd in self.commands() if cmd[0] not in ("export_definitions", "authenticate_user")]

    def imported(self, kind):
        """What the imports held of one kind, user entries without their hashes."""
        entries = [entry for doc in self.imports for entry in doc.get(kind, [])]
        if kind == "users":
            return [{k: v for k, v in entry.items() if k != "password_hash"} for entry in entries]
        return entries


@pytest.fixture
def node(monkeypatch):
    fake = RabbitNode()
    patch_module(monkeypatch, fake, bin_dir="/usr/sbin")
    fake.stdin_detached = 0

    def detach():
        fake.stdin_detached += 1

    monkeypatch.setattr(rabbitmq_accounts, "detach_stdin", detach)
    return fake


def service(name, password, **extra):
    return {"user": name, "password": password, "vhost": name, **extra}


ACCOUNTS = [service("nova", NOVA_PW), service("neutron", NEUTRON_PW)]


def run_module(**args):
    with patch_module_args(args), pytest.raises(Exited) as caught:
        rabbitmq_accounts.main()
    return caught.value.result


def failing(**args):
    with patch_module_args(args), pytest.raises(Failed) as caught:
        rabbitmq_accounts.main()
    return caught.value.result


def assert_no_password(result, *passwords):
    text = json.dumps(result)
    for password in passwords or ALL_PASSWORDS:
        assert password not in text


# --- hashes ----------------------------------------------------------------------------------------------------------


def test_salted_hash_is_what_hashlib_gives_with_a_known_salt():
    salt = bytes.fromhex("a1b2c3d4")
    expected = base64.b64encode(salt + hashlib.sha256(salt + "s3cret-é".encode()).digest()).decode()
    assert logic.salted_hash(SHA256, salt, "s3cret-é") == expected
    assert logic.password_matches(expected, SHA256, "s3cret-é") is True
    assert logic.password_matches(expected, SHA256, "s3cret-e") is False


@pytest.mark.parametrize(
    ("algorithm", "salt_hex", "password", "stored"),
    [
        # The SHA-256 example of the RabbitMQ password hashing write-ups (salt 908DC60A, password test12) and the
        # MD5 example of the original mailing list post (salt CAD5089B, password simon).
        (SHA256, "908DC60A", "test12", "kI3GCqW5JLMJa4iX1lo7X4D6XbYqlLgxIs30+P6tENUV2POR"),
        (MD5, "CAD5089B", "simon", "ytUIm8s3AnKsXQjptplKFytfVxI="),
    ],
)
def test_published_vectors(algorithm, salt_hex, password, stored):
    assert logic.salted_hash(algorithm, bytes.fromhex(salt_hex), password) == stored
    assert logic.password_matches(stored, algorithm, password) is True
    assert logic.password_matches(stored, algorithm, password + "x") is False


@pytest.mark.parametrize(("algorithm", "digest"), [(SHA256, "sha256"), (SHA512, "sha512"), (MD5, "md5")])
def test_each_hashing_module_is_checked_with_its_digest(algorithm, digest):
    stored = rabbit_hash("pässword", salt=b"\x00\xff\x10\x01", digest=digest)
    assert logic.password_matches(stored, algorithm, "pässword") is True
    assert logic.password_matches(stored, algorithm, "password") is False
    other = SHA512 if algorithm != SHA512 else SHA256
    assert logic.password_matches(stored, other, "pässword") is False


def test_what_cannot_be_checked_here_is_left_to_rabbitmq():
    stored = rabbit_hash("pw")
    assert logic.password_matches(stored, "my_custom_hashing_module", "pw") is None
    assert logic.password_matches(stored, None, "pw") is None
    assert logic.password_matches("not base64!", SHA256, "pw") is None


def test_a_cleared_password_matches_nothing():
    assert logic.password_matches("", SHA256, "pw") is False


# --- definitions and plan --------------------------------------------------------------------------------------------


def test_parse_definitions_reads_users_vhosts_and_permissions():
    node = RabbitNode()
    node.add("nova", NOVA_PW, "nova", perms=("^nova", ".*", ""))
    state = logic.parse_definitions(node.definitions())
    assert set(state["users"]) == {"admin", "nova"}
    assert state["users"]["admin"]["tags"] == ["administrator"]
    assert state["users"]["nova"]["hashing_algorithm"] == SHA256
    assert state["vhosts"] == {"/", "nova"}
    assert state["permissions"][("nova", "nova")] == ("^nova", ".*", "")


def test_tags_of_older_exports_are_a_comma_separated_string():
    assert logic.normalize_tags("monitoring,administrator") == ["administrator", "monitoring"]
    assert logic.normalize_tags("") == []
    assert logic.normalize_tags(["b", "a", "a"]) == ["a", "b"]


def test_parse_json_after_a_warning():
    assert logic.parse_json_output('warning: native name encoding latin1\n{"users": []}') == {"users": []}
    assert logic.parse_json_output("Error: unable to perform an operation") is None


def test_plan_hashes_new_passwords_and_keeps_them_out_of_what_it_shows():
    users = logic.group_accounts([service("nova", NOVA_PW)])
    state = logic.parse_definitions(RabbitNode().definitions())
    changes = logic.plan(users, state, {})
    assert changes["actions"] == ["created vhost nova", "created user nova", "set permissions of nova on nova"]
    (user,) = changes["definitions"]["users"]
    assert user["hashing_algorithm"] == SHA256
    assert hash_accepts(user["password_hash"], SHA256, NOVA_PW)
    assert_no_password(changes, NOVA_PW)


def test_each_new_hash_gets_its_own_salt():
    users = logic.group_accounts([service("nova", NOVA_PW), service("neutron", NOVA_PW)])
    state = logic.parse_definitions(RabbitNode().definitions())
    first, second = logic.plan(users, state, {})["definitions"]["users"]
    assert first["password_hash"] != second["password_hash"]


def test_a_value_that_starts_with_a_dash_comes_after_a_double_dash():
    assert logic.positional(["nova", "-secret"]) == ["--", "nova", "-secret"]
    assert logic.positional(["nova", "secret"]) == ["nova", "secret"]


def test_scrub_masks_every_secret():
    assert logic.scrub("add_user nova abc and abcdef", ["abc", "abcdef"]) == "add_user nova ******** and ********"


# --- the module ------------------------------------------------------------------------------------------------------


def test_all_in_place_is_one_rabbitmqctl_call(node):
    node.add("nova", NOVA_PW, "nova")
    node.add("neutron", NEUTRON_PW, "neutron")
    result = run_module(accounts=ACCOUNTS)
    assert result["changed"] is False
    assert result["actions"] == []
    assert result["msg"] == "All accounts are in place."
    assert node.calls == [[CTL, "-q", "export_definitions", "-", "--format", "json"]]
    assert node.stdin_detached == 1
    assert_no_password(result)


def test_a_fresh_cluster_gets_vhosts_users_and_permissions_in_one_import(node):
    result = run_module(accounts=ACCOUNTS)
    assert result["changed"] is True
    assert [cmd[0] for cmd in node.commands()] == ["export_definitions", "import_definitions"]
    assert result["actions"] == [
        "created vhost nova",
        "created vhost neutron",
        "created user nova",
        "set permissions of nova on nova",
        "created user neutron",
        "set permissions of neutron on neutron",
    ]
    assert node.vhosts == ["/", "nova", "neutron"]
    assert node.accepts("nova", NOVA_PW) and node.accepts("neutron", NEUTRON_PW)
    assert node.users["nova"]["tags"] == []
    assert node.permissions[("nova", "nova")] == (".*", ".*", ".*")
    assert node.permissions[("neutron", "neutron")] == (".*", ".*", ".*")
    assert_no_password(result)
    # The second run finds everything in place.
    node.calls.clear()
    assert run_module(accounts=ACCOUNTS)["changed"] is False
    assert len(node.calls) == 1


def test_the_import_file_is_private_and_removed(node):
    run_module(accounts=ACCOUNTS)
    ((path, mode),) = node.import_files
    assert mode == 0o600
    assert not os.path.exists(path)
    assert all(password not in json.dumps(node.imports) for password in ALL_PASSWORDS)


def test_as_root_the_import_file_belongs_to_the_rabbitmq_user(node, monkeypatch):
    owners = []
    monkeypatch.setattr(rabbitmq_accounts.os, "geteuid", lambda: 0)
    monkeypatch.setattr(
        rabbitmq_accounts.pwd, "getpwnam", lambda name: type("Entry", (), {"pw_uid": {"rabbitmq": 107}[name]})
    )
    monkeypatch.setattr(rabbitmq_accounts.os, "chown", lambda path, uid, gid: owners.append((uid, gid)))
    run_module(accounts=ACCOUNTS)
    assert owners == [(107, -1)]


def test_only_the_missing_pieces_are_imported(node):
    node.add("nova", NOVA_PW, "nova")
    node.vhosts.append("neutron")  # vhost there, user and permission not
    del node.permissions[("nova", "nova")]
    result = run_module(accounts=ACCOUNTS)
    assert node.imported("vhosts") == []
    assert node.imported("users") == [
        {"name": "neutron", "hashing_algorithm": SHA256, "tags": []},
    ]
    assert node.imported("permissions") == [
        {"user": "nova", "vhost": "nova", "configure": ".*", "write": ".*", "read": ".*"},
        {"user": "neutron", "vhost": "neutron", "configure": ".*", "write": ".*", "read": ".*"},
    ]
    assert result["actions"] == [
        "set permissions of nova on nova",
        "created user neutron",
        "set permissions of neutron on neutron",
    ]
    assert node.accepts("nova", NOVA_PW), "an unchanged user is not imported again"


def test_a_changed_permission_is_set_again(node):
    node.add("nova", NOVA_PW, "nova", perms=(".*", ".*", "^$"))
    result = run_module(accounts=[service("nova", NOVA_PW, configure_priv="^nova\\.")])
    assert node.imported("users") == []
    assert node.permissions[("nova", "nova")] == ("^nova\\.", ".*", ".*")
    assert result["actions"] == ["set permissions of nova on nova"]


def test_a_rotated_secret_changes_the_password(node):
    node.add("nova", OLD_PW, "nova")
    node.add("neutron", NEUTRON_PW, "neutron")
    result = run_module(accounts=ACCOUNTS)
    assert node.imported("users") == [{"name": "nova", "hashing_algorithm": SHA256, "tags": []}]
    assert node.accepts("nova", NOVA_PW) and not node.accepts("nova", OLD_PW)
    assert result["actions"] == ["changed password of nova"]
    assert result["changed"] is True
    assert_no_password(result)
    assert not [cmd for cmd in node.commands() if cmd[0] == "authenticate_user"], "checked locally"


def test_on_create_leaves_an_existing_password_alone(node):
    node.add("nova", OLD_PW, "nova")
    result = run_module(accounts=[service("nova", NOVA_PW)], update_password="on_create")  # noqa: S106
    assert result["changed"] is False
    assert node.writes() == []


def test_a_kept_password_that_differs_is_not_in_line(node):
    node.add("nova", OLD_PW, "nova")
    result = run_module(accounts=[service("nova", NOVA_PW)], update_password="on_create")  # noqa: S106
    assert result["in_line"] == []
    assert node.writes() == []
    node.calls.clear()
    result = run_module(accounts=[service("nova", OLD_PW)], update_password="on_create")  # noqa: S106
    assert result["in_line"] == ["nova"]
    assert [cmd[0] for cmd in node.commands()] == ["export_definitions"]


def test_each_account_can_keep_or_apply_its_own_password(node):
    node.add("admin", OLD_PW, "/", tags=["administrator"])
    node.add("nova", OLD_PW, "nova")
    accounts = [
        {"user": "admin", "password": ADMIN_PW, "vhost": "/", "tags": ["administrator"]},
        service("nova", NOVA_PW, update_password=logic.KEEP),
        service("neutron", NEUTRON_PW, update_password=logic.KEEP),
    ]
    result = run_module(accounts=accounts)
    assert result["actions"] == [
        "created vhost neutron",
        "changed password of admin",
        "created user neutron",
        "set permissions of neutron on neutron",
    ]
    assert node.accepts("admin", ADMIN_PW)
    assert node.accepts("nova", OLD_PW) and not node.accepts("nova", NOVA_PW), "a kept password is never changed"
    assert node.accepts("neutron", NEUTRON_PW)
    # admin was changed and neutron created by this call; nova's secret differs from what RabbitMQ holds.
    assert result["in_line"] == ["admin", "neutron"]
    assert_no_password(result, ADMIN_PW, NOVA_PW, NEUTRON_PW, OLD_PW)


def test_in_line_lists_only_what_needs_nothing(node):
    node.add("nova", NOVA_PW, "nova")
    node.add("neutron", NEUTRON_PW, "neutron", perms=("^$", ".*", ".*"))
    result = run_module(accounts=ACCOUNTS, _ansible_check_mode=True)
    assert result["in_line"] == ["nova"], "neutron's permission would still change"
    assert node.writes() == []
    assert run_module(accounts=ACCOUNTS)["in_line"] == ["neutron", "nova"]


def test_a_kept_password_of_an_unknown_module_is_not_asked_and_not_in_line(node):
    node.add("nova", NOVA_PW, "nova", algorithm="acme_password_hashing_argon2")
    result = run_module(accounts=[service("nova", NOVA_PW, update_password=logic.KEEP)])
    assert [cmd[0] for cmd in node.commands()] == ["export_definitions"]
    assert result["in_line"] == []
    assert result["changed"] is False


def test_one_user_with_two_password_policies_is_refused(node):
    result = failing(
        accounts=[
            service("nova", NOVA_PW, update_password=logic.KEEP),
            {"user": "nova", "password": NOVA_PW, "vhost": "/", "update_password": logic.APPLY},
        ]
    )
    assert "different update_password" in result["msg"]
    assert node.calls == []


def test_sha512_and_md5_users_are_checked_locally_and_keep_their_module(node):
    node.add("nova", NOVA_PW, "nova", algorithm=SHA512)
    node.add("neutron", "old", "neutron", algorithm=MD5)
    result = run_module(accounts=ACCOUNTS)
    assert node.imported("users") == [{"name": "neutron", "hashing_algorithm": MD5, "tags": []}]
    assert node.accepts("neutron", NEUTRON_PW)
    assert result["actions"] == ["changed password of neutron"]


def test_an_unknown_hashing_module_is_asked_with_authenticate_user(node):
    node.add("nova", NOVA_PW, "nova", algorithm="acme_password_hashing_argon2")
    node.add("neutron", "old", "neutron", algorithm="acme_password_hashing_argon2")
    result = run_module(accounts=ACCOUNTS)
    assert [cmd for cmd in node.commands() if cmd[0] == "authenticate_user"] == [
        ["authenticate_user", "nova", NOVA_PW],
        ["authenticate_user", "neutron", NEUTRON_PW],
    ]
    # A new hash can only be made with a module known here: RabbitMQ's default.
    assert node.imported("users") == [{"name": "neutron", "hashing_algorithm": SHA256, "tags": []}]
    assert node.accepts("neutron", NEUTRON_PW)
    assert_no_password(result)


def test_tags_are_set_and_cleared(node):
    node.add("monitor", NOVA_PW, "/", tags=["monitoring", "management"], algorithm=SHA512)
    result = run_module(
        accounts=[
            {"user": "admin", "password": ADMIN_PW, "vhost": "/", "tags": ["administrator"]},
            {"user": "monitor", "password": NOVA_PW, "vhost": "/"},
            {"user": "ops", "password": NEUTRON_PW, "vhost": "/", "tags": ["monitoring", "administrator"]},
        ]
    )
    assert node.imported("users") == [
        {"name": "monitor", "hashing_algorithm": SHA512, "tags": []},
        {"name": "ops", "hashing_algorithm": SHA256, "tags": ["administrator", "monitoring"]},
    ]
    assert node.accepts("monitor", NOVA_PW), "a tag change keeps the stored hash"
    assert node.accepts("ops", NEUTRON_PW)
    assert result["actions"] == [
        "cleared tags of monitor",
        "created user ops",
        "set tags of ops to administrator, monitoring",
        "set permissions of ops on /",
    ]


def test_one_user_on_several_vhosts(node):
    accounts = [
        {"user": "admin", "password": ADMIN_PW, "vhost": "/", "tags": ["administrator"]},
        {"user": "admin", "password": ADMIN_PW, "vhost": "nova", "tags": ["administrator"], "configure_priv": "^$"},
    ]
    result = run_module(accounts=accounts)
    assert node.imported("vhosts") == [{"name": "nova"}]
    assert node.imported("users") == []
    assert node.permissions[("admin", "nova")] == ("^$", ".*", ".*")
    assert result["actions"] == ["created vhost nova", "set permissions of admin on nova"]


def test_the_users_before_the_call_are_returned(node):
    node.add("guest", "guest", "/")
    node.add("nova", NOVA_PW, "nova")
    result = run_module(accounts=ACCOUNTS)
    assert result["users"] == ["admin", "guest", "nova"]
    assert "neutron" not in result["users"]  # created by this call, not there before it
    assert run_module(accounts=ACCOUNTS)["users"] == ["admin", "guest", "neutron", "nova"]


def test_check_mode_returns_the_users_too(node):
    node.add("guest", "guest", "/")
    assert run_module(accounts=ACCOUNTS, _ansible_check_mode=True)["users"] == ["admin", "guest"]


def test_nothing_is_ever_deleted(node):
    node.add("heat", "whatever", "heat")
    node.add("nova", OLD_PW, "nova")
    node.permissions[("nova", "/")] = (".*", ".*", ".*")
    run_module(accounts=[service("nova", NOVA_PW)])
    assert [cmd[0] for cmd in node.writes()] == ["import_definitions"]
    assert "heat" in node.users and "heat" in node.vhosts and ("nova", "/") in node.permissions
    assert [user["name"] for user in node.imported("users")] == ["nova"]


def test_check_mode_reads_and_reports_but_writes_nothing(node):
    node.add("nova", OLD_PW, "nova")
    result = run_module(accounts=ACCOUNTS, _ansible_check_mode=True)
    assert result["changed"] is True
    assert result["actions"] == [
        "created vhost neutron",
        "changed password of nova",
        "created user neutron",
        "set permissions of neutron on neutron",
    ]
    assert result["msg"].startswith("Would make 4 changes: created vhost neutron; ")
    assert node.commands() == [["export_definitions", "-", "--format", "json"]]
    assert node.accepts("nova", OLD_PW)
    assert node.imports == []
    assert_no_password(result)


def test_check_mode_with_nothing_to_do(node):
    node.add("nova", NOVA_PW, "nova")
    result = run_module(accounts=[service("nova", NOVA_PW)], _ansible_check_mode=True)
    assert result["changed"] is False
    assert result["actions"] == []


def test_the_node_option_goes_to_every_call(node):
    node.add("nova", "old", "nova", algorithm="acme_password_hashing_argon2")
    run_module(accounts=[service("nova", NOVA_PW)], node="rabbit@ctl1")
    assert [cmd[0] for cmd in node.commands()] == ["export_definitions", "authenticate_user", "import_definitions"]
    assert all(argv[1:3] == ["-n", "rabbit@ctl1"] for argv in node.calls)


def test_an_absolute_rabbitmqctl_path_is_used_as_given(node, tmp_path, monkeypatch):
    monkeypatch.setattr(rabbitmq_accounts.os, "access", lambda path, mode: path == CTL)
    node.add("nova", NOVA_PW, "nova")
    run_module(accounts=[service("nova", NOVA_PW)], rabbitmqctl=CTL)
    assert node.calls[0][0] == CTL
    result = failing(accounts=[service("nova", NOVA_PW)], rabbitmqctl=str(tmp_path / "rabbitmqctl"))
    assert "is not an executable file" in result["msg"]


def test_a_password_that_starts_with_a_dash(node):
    node.add("nova", "old", "nova", algorithm="acme_password_hashing_argon2")
    result = run_module(accounts=[service("nova", DASH_PW)])
    assert ["authenticate_user", "--", "nova", DASH_PW] in node.commands()
    assert node.accepts("nova", DASH_PW)
    assert_no_password(result, DASH_PW)


def test_masking_never_touches_the_output_that_is_parsed(node):
    # A (weak) password that also occurs in the exported JSON must not break reading it.
    node.add("nova", "name", "nova")
    result = run_module(accounts=[service("nova", "name")])
    assert result["changed"] is False
    assert len(node.calls) == 1


# --- failures never show a password ----------------------------------------------------------------------------------


def test_a_failing_import_says_what_it_may_have_applied_without_the_password(node):
    # A CLI that echoes what it was given in the error must not leak a secret through the task result.
    node.fail["import_definitions"] = (
        65,
        "",
        f"Error:\nFailed to import definitions: {{:credential_validation_failed, '{NEUTRON_PW}'}}",
    )
    node.add("nova", "old", "nova")
    result = failing(accounts=ACCOUNTS)
    assert result["changed"] is False
    assert result["actions"] == []
    assert result["msg"].startswith("rabbitmqctl import_definitions failed (exit 65): ")
    assert "********" in result["msg"]
    applied = "It may have applied part of: created vhost neutron; changed password of nova; created user neutron"
    assert applied in result["msg"]
    assert_no_password(result)


def test_a_node_that_does_not_answer(node):
    node.fail["export_definitions"] = (69, "", "Error: unable to perform an operation on node 'rabbit@ctl1'.\n")
    result = failing(accounts=ACCOUNTS)
    assert result["changed"] is False
    assert "rabbitmqctl export_definitions failed (exit 69): Error: unable to perform an operation" in result["msg"]
    assert node.writes() == []


def test_conflicting_passwords_for_one_user_are_refused_without_showing_them(node):
    result = failing(
        accounts=[
            {"user": "admin", "password": ADMIN_PW, "vhost": "/"},
            {"user": "admin", "password": NOVA_PW, "vhost": "nova"},
        ]
    )
    assert result["msg"] == (
        "Invalid accounts: user admin is listed more than once with different passwords. Nothing was changed."
    )
    assert node.calls == []
    assert_no_password(result)


def test_an_empty_password_is_refused(node):
    result = failing(accounts=[service("nova", "")])
    assert "has an empty password" in result["msg"]
    assert node.calls == []


def test_ansible_masks_the_passwords_as_no_log_values(node, monkeypatch):
    seen = {}

    def exit_json(self, **result):
        seen.update(self.no_log_values and {"no_log_values": set(self.no_log_values)})
        raise Exited(result)

    monkeypatch.setattr(rabbitmq_accounts.AnsibleModule, "exit_json", exit_json)
    node.add("nova", NOVA_PW, "nova")
    node.add("neutron", NEUTRON_PW, "neutron")
    run_module(accounts=ACCOUNTS)
    assert {NOVA_PW, NEUTRON_PW} <= seen["no_log_values"]

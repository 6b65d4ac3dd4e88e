# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Pure logic of stackwright.cloud.rabbitmq_accounts: read exported definitions, check passwords against their
hashes, and plan the definitions to import that bring the accounts in line.

No I/O here but the salts of new hashes: the module runs rabbitmqctl, these functions only interpret what it printed
and decide what to import. The planned actions never carry a password, and the planned definitions only hashes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os

# RabbitMQ stores base64(salt + H(salt + utf-8 password)) with a 4-byte salt (rabbit_password.erl); the hashing module
# of each user is exported as `hashing_algorithm`. A user from before 3.6.0 has none and RabbitMQ treats it as MD5,
# but the export already names the module it resolved, so an absent value is not guessed here.
SALT_BYTES = 4
HASH_FUNCTIONS = {
    "rabbit_password_hashing_sha256": "sha256",
    "rabbit_password_hashing_sha512": "sha512",
    "rabbit_password_hashing_md5": "md5",
}
PERMISSION_KEYS = ("configure", "write", "read")
DEFAULT_ALGORITHM = "rabbit_password_hashing_sha256"
MASK = "********"
# The values of update_password: apply the given password to existing users, or keep theirs.
APPLY = "always"
KEEP = "on_create"


class AccountsError(Exception):
    """The requested accounts or the exported definitions cannot be used; the message says why (no secrets)."""


def parse_json_output(text):
    """The JSON document a CLI tool printed, skipping any text before it; None when there is none."""
    text = (text or "").strip()
    decoder = json.JSONDecoder()
    for index, char in enumerate(text):
        if char in "[{":
            try:
                return decoder.raw_decode(text[index:])[0]
            except ValueError:
                continue
    return None


def _digest(algorithm, data):
    name = HASH_FUNCTIONS[algorithm]
    try:
        return hashlib.new(name, data, usedforsecurity=False).digest()
    except TypeError:  # a hashlib without the keyword
        return hashlib.new(name, data).digest()


def salted_hash(algorithm, salt, password):
    """The password_hash RabbitMQ stores for `password` with this salt and hashing module (base64 text)."""
    digest = _digest(algorithm, salt + password.encode("utf-8"))
    return base64.b64encode(salt + digest).decode("ascii")


def password_matches(password_hash, algorithm, password):
    """True or False when the stored hash can be checked here; None when it cannot (unknown hashing module, or a
    hash that is not base64): the caller then asks RabbitMQ (rabbitmqctl authenticate_user)."""
    if algorithm not in HASH_FUNCTIONS:
        return None
    try:
        raw = base64.b64decode((password_hash or "").encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return None
    if len(raw) <= SALT_BYTES:
        # No hash at all (a cleared password): nothing matches, as RabbitMQ refuses every password then.
        return False
    salt, stored = raw[:SALT_BYTES], raw[SALT_BYTES:]
    try:
        computed = _digest(algorithm, salt + password.encode("utf-8"))
    except ValueError:  # the digest is not available here (an MD5 blocked by FIPS mode)
        return None
    return hmac.compare_digest(stored, computed)


def normalize_tags(value):
    """User tags as a sorted list: RabbitMQ 3.9+ exports a list, older releases a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, (list, tuple)):
        items = value
    else:
        raise AccountsError(f"user tags of an unexpected type in the definitions: {type(value).__name__}")
    return sorted({str(item).strip() for item in items if str(item).strip()})


def parse_definitions(data):
    """{users, vhosts, permissions} from `rabbitmqctl export_definitions - --format json`.

    users: {name: {"password_hash", "hashing_algorithm", "tags"}}; vhosts: set of names;
    permissions: {(user, vhost): (configure, write, read)}.
    """
    if not isinstance(data, dict):
        raise AccountsError("the exported definitions are not a JSON object")
    for key in ("users", "vhosts", "permissions"):
        if not isinstance(data.get(key, []), list):
            raise AccountsError(f"'{key}' in the exported definitions is not a list")
    users = {}
    for user in data.get("users") or []:
        if not isinstance(user, dict) or "name" not in user:
            raise AccountsError("a user in the exported definitions has no name")
        users[user["name"]] = {
            "password_hash": user.get("password_hash") or "",
            "hashing_algorithm": user.get("hashing_algorithm"),
            "tags": normalize_tags(user.get("tags")),
        }
    vhosts = {vhost["name"] for vhost in data.get("vhosts") or [] if isinstance(vhost, dict) and "name" in vhost}
    permissions = {}
    for perm in data.get("permissions") or []:
        if not isinstance(perm, dict) or "user" not in perm or "vhost" not in perm:
            raise AccountsError("a permission in the exported definitions has no user or vhost")
        permissions[(perm["user"], perm["vhost"])] = tuple(str(perm.get(key, "")) for key in PERMISSION_KEYS)
    return {"users": users, "vhosts": vhosts, "permissions": permissions}


def group_accounts(accounts, default_policy=APPLY):
    """{user: {"password", "tags", "keep_existing", "grants": {vhost: (configure, write, read)}}} in the order given.

    One user may appear once per vhost; its entries must then agree on the password, the tags and update_password
    (an account without its own takes default_policy), and a vhost may be named only once per user. keep_existing is
    True for update_password: on_create (an existing user's password is kept).
    """
    users = {}
    for index, account in enumerate(accounts):
        name = account.get("user")
        if not name:
            raise AccountsError(f"accounts[{index}] has no user")
        if not account.get("vhost"):
            raise AccountsError(f"accounts[{index}] (user {name}) has no vhost")
        if not account.get("password"):
            raise AccountsError(f"accounts[{index}] (user {name}) has an empty password; RabbitMQ refuses blank ones")
        tags = normalize_tags(account.get("tags") or [])
        grant = (account.get("configure_priv", ".*"), account.get("write_priv", ".*"), account.get("read_priv", ".*"))
        keep_existing = (account.get("update_password") or default_policy) == KEEP
        entry = users.setdefault(
            name, {"password": account["password"], "tags": tags, "keep_existing": keep_existing, "grants": {}}
        )
        if entry["password"] != account["password"]:
            raise AccountsError(f"user {name} is listed more than once with different passwords")
        if entry["tags"] != tags:
            raise AccountsError(f"user {name} is listed more than once with different tags")
        if entry["keep_existing"] != keep_existing:
            raise AccountsError(f"user {name} is listed more than once with different update_password")
        if account["vhost"] in entry["grants"]:
            raise AccountsError(f"user {name} is listed twice for vhost {account['vhost']}")
        entry["grants"][account["vhost"]] = grant
    return users


def password_checks_needed(users, state):
    """The existing users whose password can be compared, each with (password_hash, hashing_algorithm). A password
    kept by update_password: on_create is compared too, only to tell whether the account is in line (in_line())."""
    return {
        name: (state["users"][name]["password_hash"], state["users"][name]["hashing_algorithm"])
        for name in users
        if name in state["users"]
    }


def positional(args):
    """rabbitmqctl parses its arguments with Elixir's OptionParser: a value that starts with a dash would be read as
    an option, so `--` goes before the positional arguments when one of them does."""
    return ["--", *args] if any(arg.startswith("-") for arg in args) else list(args)


def plan(users, state, password_ok):
    """What must change to bring the accounts in line, as the task reports it, in the order RabbitMQ applies it.

    users: from group_accounts(); state: from parse_definitions(); password_ok: {user: bool} for the existing users
    whose password was checked (a user missing from it, or with update_password: on_create, keeps its password).
    Nothing is ever deleted.
    Returns {"actions": [text without secrets], "definitions": the document for `rabbitmqctl import_definitions`,
    holding only what changes}. New and changed passwords are hashed here, with a fresh salt each, by the user's
    hashing module (SHA-256 for a new user, as RabbitMQ's default), so no password reaches a command line.
    """
    actions = []
    vhosts = []
    imported_users = []
    permissions = []
    seen_vhosts = set(state["vhosts"])
    for entry in users.values():
        for vhost in entry["grants"]:
            if vhost not in seen_vhosts:
                seen_vhosts.add(vhost)
                vhosts.append({"name": vhost})
                actions.append(f"created vhost {vhost}")
    for name, entry in users.items():
        current = state["users"].get(name)
        changes = []
        if current is None:
            changes.append(f"created user {name}")
            algorithm = DEFAULT_ALGORITHM
            password_hash = None
            current_tags = []
        else:
            algorithm = current["hashing_algorithm"]
            password_hash = current["password_hash"]
            if password_ok.get(name) is False and not entry["keep_existing"]:
                changes.append(f"changed password of {name}")
                password_hash = None
                if algorithm not in HASH_FUNCTIONS:
                    algorithm = DEFAULT_ALGORITHM
            current_tags = current["tags"]
        if entry["tags"] != current_tags:
            changes.append(
                f"set tags of {name} to {', '.join(entry['tags'])}" if entry["tags"] else f"cleared tags of {name}"
            )
        if changes:
            if password_hash is None:
                password_hash = salted_hash(algorithm, os.urandom(SALT_BYTES), entry["password"])
            imported_users.append(
                {"name": name, "password_hash": password_hash, "hashing_algorithm": algorithm, "tags": entry["tags"]}
            )
            actions.extend(changes)
        for vhost, grant in entry["grants"].items():
            if state["permissions"].get((name, vhost)) != grant:
                permissions.append({"user": name, "vhost": vhost, **dict(zip(PERMISSION_KEYS, grant, strict=True))})
                actions.append(f"set permissions of {name} on {vhost}")
    definitions = {"vhosts": vhosts, "users": imported_users, "permissions": permissions}
    return {"actions": actions, "definitions": definitions}


def in_line(users, state, password_ok, applied):
    """The users whose vhosts, password, tags and permissions are what users asks, sorted: after the import of plan()
    when applied, otherwise as state has them. A kept password (on_create, or one that could not be checked) counts
    only when password_ok says it matches, so a caller can trust the list to skip its own check of these users."""
    result = []
    for name, entry in users.items():
        exists = name in state["users"]
        if applied:
            if exists and password_ok.get(name) is not True and entry["keep_existing"]:
                continue
        elif (exists and password_ok.get(name) is not True) or plan({name: entry}, state, password_ok)["actions"]:
            continue
        result.append(name)
    return sorted(result)


def scrub(text, secrets):
    """text with every secret replaced by a mask, longest first (so that no part of a longer one survives)."""
    text = text or ""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return text

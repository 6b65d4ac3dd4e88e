# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Keystone key repositories (fernet token keys, credential keys): their layout, the rotation and its safety rules.

A repository holds one file per key, named by its index: 0 is the staged key (the next primary), the highest index
is the primary (it encrypts), the others are secondaries (they only decrypt). A rotation promotes the staged key to
index max+1, creates a new staged key 0 and removes the oldest secondaries so that max_active_keys remain. Renaming
keeps a file's mtime, so the mtime of a key is when it was created as staged key, i.e. the rotation before the one
that promoted it. Pure Python, no Ansible imports: the rules that the keystone_keys module applies.
"""

from __future__ import annotations

import base64
import binascii
import configparser
import hashlib
import os
import re

STAGED = 0
KEY_BYTES = 32
KEY_NAME = re.compile(r"^(0|[1-9][0-9]*)$")
# keystone's own defaults, used when keystone.conf does not set a value.
KEYSTONE_DEFAULTS = {"token_expiration": 3600, "allow_expired_window": 172800, "max_active_keys": 3}
# keystone fixes the credential repository at three keys (credential_fernet.MAX_ACTIVE_KEYS).
CREDENTIAL_MAX_ACTIVE_KEYS = 3


class KeyRepositoryError(Exception):
    """The repository or the requested change is not safe or not valid; the message says what to do."""


def generate_key():
    """A new Fernet key: 32 random bytes, urlsafe base64 (what cryptography's Fernet.generate_key makes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode("ascii")


def is_valid_key(text):
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False
    return len(raw) == KEY_BYTES


def key_checksum(text):
    """sha256 of a key as keystone reads it (stripped): comparable across hosts without showing the key."""
    return hashlib.sha256(text.strip().encode("ascii", "replace")).hexdigest()


def list_key_files(path):
    """{index: file path} of the keys in a repository; other names (temporary files) are not keys."""
    keys = {}
    for name in os.listdir(path):
        full = os.path.join(path, name)
        if KEY_NAME.match(name) and os.path.isfile(full):
            keys[int(name)] = full
    return keys


def minimum_active_keys(token_expiration, allow_expired_window, rotation_interval):
    """Keys a repository needs so that no rotation removes a key that signed a token still usable.

    A token may be used for expiration + allow_expired_window seconds; in that time ceil(that / interval)
    rotations happen and push its key back as many places among the secondaries; the primary and the staged
    key come on top.
    """
    if rotation_interval <= 0:
        raise KeyRepositoryError("rotation_interval must be a positive number of seconds.")
    lifetime = token_expiration + allow_expired_window
    return -(-lifetime // rotation_interval) + 2


def safe_rotation_interval(token_lifetime, max_active_keys):
    """The shortest gap between rotations that never removes a key a usable token needs, once the repository is full.

    A key stops signing at one rotation and is removed max_active_keys - 2 rotations later. None when no gap is
    enough: with fewer than 3 keys a rotation removes the key that signed until that moment.
    """
    if max_active_keys < 3:
        return None if token_lifetime > 0 else 0
    return -(-token_lifetime // (max_active_keys - 2))


def default_min_interval(rotation_interval):
    """The shortest gap between two rotations by default: the interval less 10 %, at most one hour less.

    The margin lets a daily job that starts a few minutes early still rotate.
    """
    return rotation_interval - min(3600, rotation_interval // 10)


def plan_rotation(indices, max_active_keys):
    """What a rotation does to a repository with these key indices: {promoted_to, removed, after}."""
    indices = sorted(set(indices))
    if STAGED not in indices:
        raise KeyRepositoryError(
            "The repository has no staged key 0: it was not set up by keystone-manage fernet_setup or "
            "credential_setup, or a copy is incomplete. Set it up, or write the keys of another controller with "
            "state=present."
        )
    if max_active_keys < 2:
        raise KeyRepositoryError("max_active_keys must be at least 2 (the primary and the staged key).")
    promoted_to = max(indices) + 1
    kept = [index for index in indices if index != STAGED] + [promoted_to]
    # The oldest (lowest) secondaries go first; the new staged key 0 counts too.
    excess = max(0, len(kept) + 1 - max_active_keys)
    removed, kept = kept[:excess], kept[excess:]
    return {"promoted_to": promoted_to, "removed": removed, "after": sorted([STAGED, *kept])}


def signing_ended(indices, mtimes, now):
    """{index: time it stopped encrypting tokens} for every key that was ever primary (index > 0).

    Key i stopped being primary when the next key was promoted; that rotation created the staged key which is
    now the key after that one (or 0). The current primary signs until now.
    """
    ordered = sorted(index for index in indices if index != STAGED)
    successors = [*ordered[1:], STAGED]
    ended = {}
    for position, index in enumerate(ordered):
        if index == ordered[-1]:
            ended[index] = now
        else:
            # The staged key created when successors[position] was promoted is the one after it.
            created_then = successors[position + 1] if position + 1 < len(successors) else STAGED
            ended[index] = mtimes[created_then]
    return ended


def unsafe_removals(removed, indices, mtimes, now, token_lifetime):
    """Keys among `removed` that encrypted a token less than token_lifetime seconds ago: {index: seconds ago}."""
    ended = signing_ended(indices, mtimes, now)
    return {index: int(now - ended[index]) for index in removed if now - ended[index] < token_lifetime}


def read_keystone_settings(text):
    """Token lifetime and fernet key count from keystone.conf text; None for what it does not set."""
    parser = configparser.ConfigParser(strict=False, interpolation=None, inline_comment_prefixes=None)
    parser.read_string(text)

    def integer(section, option):
        if not parser.has_option(section, option):
            return None
        value = parser.get(section, option).strip()
        try:
            return int(value)
        except ValueError as error:
            raise KeyRepositoryError(f"keystone.conf: [{section}] {option} = {value!r} is not a number.") from error

    return {
        "token_expiration": integer("token", "expiration"),
        "allow_expired_window": integer("token", "allow_expired_window"),
        "max_active_keys": integer("fernet_tokens", "max_active_keys"),
    }


def validate_key_set(name, keys):
    """{int index: key} from a {index: key} mapping given to state=present; raises on anything unsafe."""
    if not isinstance(keys, dict) or not keys:
        raise KeyRepositoryError(
            f"key_material.{name} is empty: writing it would remove every key. Pass the keys returned by "
            "state=rotated or state=status with return_keys=true."
        )
    parsed = {}
    for index, key in keys.items():
        if not KEY_NAME.match(str(index)):
            raise KeyRepositoryError(f"key_material.{name}: {index!r} is not a key index (0, 1, 2, ...).")
        if not isinstance(key, str) or not is_valid_key(key):
            # Never echo the value: it may be a real key with a typo.
            raise KeyRepositoryError(f"key_material.{name}[{index}] is not a Fernet key (32 bytes, urlsafe base64).")
        parsed[int(str(index))] = key.strip()
    if STAGED not in parsed or len(parsed) < 2:
        raise KeyRepositoryError(
            f"key_material.{name} must hold the staged key 0 and at least one primary key; it holds "
            f"{sorted(parsed)}."
        )
    return parsed

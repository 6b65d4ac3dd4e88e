# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""scripts/generate-secrets: creates, extends and keeps inventory secrets, plain or vault-encrypted."""

import base64
import os
import shutil
import stat
import struct
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible_collections.stackwright.cloud.plugins.plugin_utils.registry import (
    SECRET_MIN_LENGTH,
    load_registry,
    required_secrets,
)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "scripts" / "generate-secrets"
ANSIBLE_VAULT = Path(sys.executable).parent / "ansible-vault"
REQUIRED = required_secrets(load_registry(REPO / "services"))
SSH_KEY = "nova_migration_ssh_key"


@pytest.fixture
def env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_VAULT")}
    env.pop("STACKWRIGHT_SERVICES", None)
    env.pop("STACKWRIGHT_SECRETS_FILE", None)
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    env["ANSIBLE_LOCAL_TEMP"] = str(tmp_path / "ansible-tmp")
    return env


@pytest.fixture
def inventory(tmp_path):
    directory = tmp_path / "inventory"
    directory.mkdir()
    (directory / "hosts.yml").write_text("---\nall:\n  hosts:\n    sw-aio1:\n")
    return directory


@pytest.fixture
def vault_env(tmp_path, env):
    password = tmp_path / "vault-pass"
    password.write_text("correct horse battery staple\n")
    return dict(env, ANSIBLE_VAULT_PASSWORD_FILE=str(password))


def run(inventory, env, check=True):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), str(inventory)], capture_output=True, text=True, env=env, check=False
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def load(path):
    return yaml.safe_load(path.read_text())


def vault(args, env):
    subprocess.run([str(ANSIBLE_VAULT), *args], env=env, check=True, capture_output=True)


def view(path, env):
    out = subprocess.run([str(ANSIBLE_VAULT), "view", str(path)], env=env, check=True, capture_output=True).stdout
    return yaml.safe_load(out)


def flat(values):
    """Every string in the values, also inside a mapping (an SSH key pair)."""
    for value in values:
        if isinstance(value, dict):
            yield from flat(value.values())
        else:
            yield value


def assert_no_values_in(proc, values):
    for value in flat(values):
        assert value not in proc.stdout and value not in proc.stderr


@pytest.fixture
def ssh_env(tmp_path, env):
    """The real registry, with nova's migration key among its secrets (whether or not services/ lists it yet)."""
    services = tmp_path / "services"
    shutil.copytree(REPO / "services", services)
    nova = yaml.safe_load((services / "nova.yml").read_text())
    nova["secrets"] = sorted(set(nova.get("secrets", [])) | {SSH_KEY})
    (services / "nova.yml").write_text("---\n" + yaml.safe_dump(nova))
    return dict(env, STACKWRIGHT_SERVICES=str(services))


def assert_ssh_key_pair(value):
    """An unencrypted ed25519 private key in OpenSSH format, and the public key line that belongs to it."""
    assert sorted(value) == ["private_key", "public_key"]
    private = value["private_key"]
    assert private.startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    assert private.endswith("-----END OPENSSH PRIVATE KEY-----\n")
    key = serialization.load_ssh_private_key(private.encode(), password=None)
    assert isinstance(key, ed25519.Ed25519PrivateKey)
    public = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    kind, data, comment = value["public_key"].split(" ")
    assert f"{kind} {data}" == public.decode() and kind == "ssh-ed25519"
    assert comment == "nova-migration@stackwright"


def test_script_is_executable_with_shebang():
    assert os.access(SCRIPT, os.X_OK)
    assert SCRIPT.read_text().startswith("#!/usr/bin/env python3\n")


def test_creates_secrets_file(inventory, env):
    proc = run(inventory, env)
    path = inventory / "secrets.yml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert text.startswith("#") and "\n---\n" in text and "ansible-vault encrypt" in text
    data = load(path)
    assert sorted(data) == REQUIRED
    for name, value in data.items():
        if name.endswith("_ssh_key"):
            assert_ssh_key_pair(value)
            continue
        assert isinstance(value, str) and len(value) >= SECRET_MIN_LENGTH
        assert value.isalnum() or name.endswith(("_cephx_key", "_uuid")), name
    assert len(set(map(repr, data.values()))) == len(data)
    assert list(data) == sorted(data)
    for name in REQUIRED:
        assert name in proc.stdout
    assert_no_values_in(proc, data.values())
    # No temp file left behind.
    assert sorted(p.name for p in inventory.iterdir()) == ["hosts.yml", "secrets.yml"]


def test_the_file_stackwright_secrets_file_names_is_the_one_written(inventory, env, tmp_path):
    """The deployment reads that file instead of the inventory's secrets.yml (an AWX credential, docs/awx.md)."""
    credential = tmp_path / "credential.yml"
    credential.write_text("---\nkept_by_the_operator: value\n")
    proc = run(inventory, dict(env, STACKWRIGHT_SECRETS_FILE=str(credential)))
    assert str(credential) in proc.stdout
    data = load(credential)
    assert sorted(data) == sorted([*REQUIRED, "kept_by_the_operator"])
    assert stat.S_IMODE(credential.stat().st_mode) == 0o600
    assert not (inventory / "secrets.yml").exists()


def test_cephx_keys_and_uuids_have_their_formats(inventory, env):
    run(inventory, env)
    data = load(inventory / "secrets.yml")
    keys = [name for name in data if name.endswith("_cephx_key")]
    uuids = [name for name in data if name.endswith("_uuid")]
    assert keys and uuids
    for name in keys:
        raw = base64.b64decode(data[name], validate=True)
        # type 1 (AES), created, length 16, 16 key bytes: what ceph-authtool reads.
        kind, created, _, length = struct.unpack("<hiih", raw[:12])
        assert (kind, length, len(raw)) == (1, 16, 28) and created > 0, name
    for name in uuids:
        assert str(uuid.UUID(data[name])) == data[name], name


def test_mode_is_0600_whatever_the_umask(inventory, env):
    old = os.umask(0)
    try:
        run(inventory, env)
    finally:
        os.umask(old)
    assert stat.S_IMODE((inventory / "secrets.yml").stat().st_mode) == 0o600


def test_vars_plugin_reads_the_file(inventory, env):
    # The vars plugin reads it with Ansible's DataLoader; check that loader agrees with PyYAML.
    run(inventory, env)
    path = inventory / "secrets.yml"
    assert DataLoader().load_from_file(str(path)) == load(path)


def test_rerun_changes_nothing(inventory, env):
    run(inventory, env)
    path = inventory / "secrets.yml"
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    proc = run(inventory, env)
    assert "no new secrets" in proc.stdout
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime
    assert_no_values_in(proc, load(path).values())


def test_operator_key_survives_and_missing_key_is_added(inventory, env):
    run(inventory, env)
    path = inventory / "secrets.yml"
    data = load(path)
    removed = REQUIRED[0]
    del data[removed]
    data["operator_ldap_bind"] = "0123"  # quoted digits must stay a string
    path.write_text("---\n" + yaml.safe_dump(data))
    proc = run(inventory, env)
    assert removed in proc.stdout
    assert "operator_ldap_bind" not in proc.stdout
    new = load(path)
    assert new["operator_ldap_bind"] == "0123"
    assert len(new[removed]) >= SECRET_MIN_LENGTH
    for name, value in data.items():
        assert new[name] == value
    assert_no_values_in(proc, new.values())


def test_empty_value_is_regenerated(inventory, env):
    run(inventory, env)
    path = inventory / "secrets.yml"
    data = load(path)
    data[REQUIRED[-1]] = ""
    path.write_text("---\n" + yaml.safe_dump(data))
    proc = run(inventory, env)
    assert REQUIRED[-1] in proc.stdout
    assert len(load(path)[REQUIRED[-1]]) >= SECRET_MIN_LENGTH


def test_ssh_key_pair_is_generated_once_and_written_as_a_block(inventory, ssh_env):
    proc = run(inventory, ssh_env)
    path = inventory / "secrets.yml"
    data = load(path)
    assert_ssh_key_pair(data[SSH_KEY])
    assert SSH_KEY in proc.stdout
    assert_no_values_in(proc, data.values())
    # Readable as the key file it is, and read back unchanged by Ansible's loader (the vars plugin).
    assert f"{SSH_KEY}:\n  private_key: |\n    -----BEGIN OPENSSH PRIVATE KEY-----\n" in path.read_text()
    assert DataLoader().load_from_file(str(path)) == data
    before = path.read_bytes()
    assert "no new secrets" in run(inventory, ssh_env).stdout
    assert path.read_bytes() == before


def test_ssh_private_key_is_read_by_openssh(inventory, ssh_env, tmp_path):
    if shutil.which("ssh-keygen") is None:
        pytest.skip("ssh-keygen is not installed (apt-get install openssh-client)")
    run(inventory, ssh_env)
    pair = load(inventory / "secrets.yml")[SSH_KEY]
    key = tmp_path / "id_ed25519"
    key.write_text(pair["private_key"])
    key.chmod(0o600)
    public = subprocess.run(["ssh-keygen", "-y", "-f", str(key)], check=True, capture_output=True, text=True).stdout
    assert public.split()[:2] == pair["public_key"].split()[:2]


@pytest.mark.parametrize("blank", [None, "", {}], ids=["null", "empty", "empty-mapping"])
def test_existing_inventory_gains_the_ssh_key_and_keeps_every_other_secret(inventory, ssh_env, blank):
    run(inventory, ssh_env)
    path = inventory / "secrets.yml"
    data = load(path)
    old_pair = data[SSH_KEY]
    if blank is None:
        del data[SSH_KEY]  # an inventory made before the key existed
    else:
        data[SSH_KEY] = blank
    path.write_text("---\n" + yaml.safe_dump(data))
    proc = run(inventory, ssh_env)
    assert proc.stdout.splitlines()[1:] == [f"  {SSH_KEY}"]
    new = load(path)
    assert_ssh_key_pair(new[SSH_KEY])
    assert new[SSH_KEY] != old_pair
    assert {k: v for k, v in new.items() if k != SSH_KEY} == {k: v for k, v in data.items() if k != SSH_KEY}
    assert_no_values_in(proc, new.values())


def test_vault_encrypted_file_is_extended_and_reencrypted(inventory, vault_env):
    path = inventory / "secrets.yml"
    removed = REQUIRED[1]
    kept = {name: f"kept-{name}-" + "x" * 32 for name in REQUIRED if name != removed}
    kept["operator_extra"] = "operator-value"
    path.write_text("---\n" + yaml.safe_dump(kept))
    vault(["encrypt", str(path)], vault_env)
    assert path.read_bytes().startswith(b"$ANSIBLE_VAULT")

    proc = run(inventory, vault_env)
    assert removed in proc.stdout
    assert path.read_bytes().startswith(b"$ANSIBLE_VAULT")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    data = view(path, vault_env)
    assert {k: v for k, v in data.items() if k != removed} == kept
    assert len(data[removed]) >= SECRET_MIN_LENGTH
    assert_no_values_in(proc, data.values())
    assert sorted(p.name for p in inventory.iterdir()) == ["hosts.yml", "secrets.yml"]

    # Nothing to add: the encrypted file is not rewritten (re-encryption would change the bytes).
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    proc = run(inventory, vault_env)
    assert "no new secrets" in proc.stdout
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime


def test_vault_id_label_is_kept(inventory, tmp_path, env):
    password = tmp_path / "prod-pass"
    password.write_text("s3cret-prod\n")
    ids_env = dict(env, ANSIBLE_VAULT_IDENTITY_LIST=f"prod@{password}")
    path = inventory / "secrets.yml"
    path.write_text("---\n{}\n")
    vault(["encrypt", "--encrypt-vault-id", "prod", str(path)], ids_env)
    assert path.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;prod")
    run(inventory, ids_env)
    assert path.read_text().startswith("$ANSIBLE_VAULT;1.2;AES256;prod")
    assert sorted(view(path, ids_env)) == REQUIRED


def test_wrong_vault_password_leaves_file_untouched(inventory, tmp_path, vault_env):
    path = inventory / "secrets.yml"
    path.write_text('---\nhaproxy_stats_password: "' + "y" * 40 + '"\n')
    vault(["encrypt", str(path)], vault_env)
    before, mtime = path.read_bytes(), path.stat().st_mtime_ns
    wrong = tmp_path / "wrong-pass"
    wrong.write_text("not the password\n")
    proc = run(inventory, dict(vault_env, ANSIBLE_VAULT_PASSWORD_FILE=str(wrong)), check=False)
    assert proc.returncode != 0
    assert "cannot decrypt" in proc.stderr and str(path) in proc.stderr
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    assert sorted(p.name for p in inventory.iterdir()) == ["hosts.yml", "secrets.yml"]


def test_no_vault_password_fails_without_prompting(inventory, env, vault_env):
    path = inventory / "secrets.yml"
    path.write_text("---\n{}\n")
    vault(["encrypt", str(path)], vault_env)
    before = path.read_bytes()
    proc = run(inventory, env, check=False)
    assert proc.returncode != 0 and "cannot decrypt" in proc.stderr
    assert path.read_bytes() == before


def test_invalid_yaml_fails_without_echoing_it(inventory, env):
    path = inventory / "secrets.yml"
    path.write_text("---\nhaproxy_stats_password: [topsecretvalue\n")
    before = path.read_bytes()
    proc = run(inventory, env, check=False)
    assert proc.returncode != 0 and "not valid YAML" in proc.stderr
    assert "topsecretvalue" not in proc.stderr + proc.stdout
    assert path.read_bytes() == before


def test_non_mapping_fails(inventory, env):
    path = inventory / "secrets.yml"
    path.write_text("---\n- a\n- b\n")
    proc = run(inventory, env, check=False)
    assert proc.returncode != 0 and "must be a mapping" in proc.stderr


def test_inventory_without_hosts_yml_fails(tmp_path, env):
    proc = run(tmp_path, env, check=False)
    assert proc.returncode != 0
    assert "no hosts.yml" in proc.stderr
    assert not (tmp_path / "secrets.yml").exists()


def test_inventory_not_a_directory_fails(tmp_path, env):
    proc = run(tmp_path / "missing", env, check=False)
    assert proc.returncode != 0
    assert "is not a directory" in proc.stderr


def test_usage_without_arguments(env):
    proc = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True, env=env, check=False)
    assert proc.returncode != 0
    assert "Usage" in proc.stderr

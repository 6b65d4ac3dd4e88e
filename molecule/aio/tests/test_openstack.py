"""The all-in-one cloud seen by real clients from the deploy host: the openstack CLI and openstacksdk through the VIPs
with TLS verified against the cloud's CA."""

import hashlib
import json
import os
import secrets as random_bytes
import ssl
import subprocess
import urllib.request

import pytest
import requests


def test_no_service_restarted_by_the_second_run(restarted_units, lab_state_dir):
    if not (lab_state_dir / "service-state.json").is_file():
        pytest.skip("no service snapshot: this lab was not deployed by a Molecule scenario with an idempotence step")
    assert restarted_units() == {}


def test_credentials_on_the_deploy_host_are_private(credentials_dir):
    for name in ("clouds.yaml", "admin-openrc.sh"):
        assert oct((credentials_dir / name).stat().st_mode & 0o777) == "0o600", name


def test_openrc_gives_a_token(credentials_dir):
    out = subprocess.run(
        ["bash", "-c", f". {credentials_dir / 'admin-openrc.sh'} && openstack token issue -f value -c id"],
        env={k: v for k, v in os.environ.items() if not k.startswith("OS_")},
        check=True,
        capture_output=True,
        text=True,
    )
    assert out.stdout.strip().startswith("gAAAA")  # a fernet token


def test_token_issue_through_the_public_vip(cli, inventory):
    token = cli("token", "issue")
    assert token["project_id"] and token["user_id"]


def test_catalog_has_identity_image_and_placement_on_both_vips(cli, inventory):
    hostvars = next(iter(inventory["hostvars"].values()))
    catalog = {entry["Type"]: entry["Endpoints"] for entry in cli("catalog", "list")}
    for service_type, port in (("identity", 5000), ("image", 9292), ("placement", 8778)):
        urls = {e["interface"]: e["url"] for e in catalog[service_type]}
        assert urls == {
            "public": f"https://{hostvars['public_vip_address']}:{port}",
            "internal": f"https://{hostvars['internal_vip_address']}:{port}",
        }, service_type


def test_fernet_and_credential_keys_are_private_to_keystone(remote, inventory):
    for name in inventory["groups"]["controller"]:
        for repo in ("/etc/keystone/fernet-keys", "/etc/keystone/credential-keys"):
            keys = remote(name).check_output(f"stat -c '%U %a %n' {repo}/*").splitlines()
            assert keys, f"{name}: no keys in {repo}"
            assert all(line.startswith("keystone 600 ") for line in keys), keys


def test_nova_logs_in_to_every_compute_host_over_ssh(remote, inventory):
    """Cold migration and resize run `ssh -o BatchMode=yes <management address> ...` as nova: from every compute host
    to every one (itself too), by address and by inventory name, with the host key checked against known_hosts."""
    computes = inventory["groups"]["compute"]
    if not inventory["hostvars"][computes[0]].get("nova_migration_ssh", True):
        pytest.skip("nova_migration_ssh is off in this inventory")
    for source in computes:
        host = remote(source)
        key = host.file("/var/lib/nova/.ssh/id_ed25519")
        assert (key.user, key.mode) == ("nova", 0o600), source
        for target in computes:
            for name in (inventory["hostvars"][target]["management_address"], target):
                login = host.run(f"runuser -u nova -- ssh -o BatchMode=yes -o StrictHostKeyChecking=yes {name} true")
                assert login.rc == 0, f"{source} -> {name} as nova: {login.stderr}"


def test_image_upload_and_download_keep_every_byte(conn):
    data = random_bytes.token_bytes(3 * 1024 * 1024 + 17)
    image = conn.image.create_image(
        name="molecule-roundtrip", data=data, disk_format="raw", container_format="bare", wait=True
    )
    try:
        assert conn.image.get_image(image.id).status == "active"
        downloaded = conn.image.download_image(image.id).content
        assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(data).hexdigest()
    finally:
        conn.image.delete_image(image.id)


def test_placement_root_answers_with_its_version(inventory, ca_file):
    hostvars = next(iter(inventory["hostvars"].values()))
    context = ssl.create_default_context(cafile=str(ca_file))
    with urllib.request.urlopen(f"https://{hostvars['public_vip_address']}:8778/", context=context, timeout=30) as r:
        versions = json.load(r)["versions"]
    assert versions[0]["status"] == "CURRENT" and versions[0]["max_version"].startswith("1.")


def test_placement_lists_resource_providers_with_a_token(conn):
    response = conn.placement.get("/resource_providers", headers={"OpenStack-API-Version": "placement 1.39"})
    assert response.status_code == 200
    assert "resource_providers" in response.json()


def test_a_token_from_one_controller_validates_on_every_other(inventory, secrets):
    controllers = inventory["groups"]["controller"]
    if len(controllers) < 2:
        pytest.skip("needs two or more controllers")
    addresses = [inventory["hostvars"][name]["management_address"] for name in controllers]
    admin = {"name": "admin", "domain": {"name": "Default"}, "password": secrets["keystone_admin_password"]}
    body = {
        "auth": {
            "identity": {"methods": ["password"], "password": {"user": admin}},
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    for issuer in addresses:
        issued = requests.post(f"http://{issuer}:5000/v3/auth/tokens", json=body, timeout=30)
        assert issued.status_code == 201, issued.text
        token = issued.headers["X-Subject-Token"]
        for validator in addresses:
            check = requests.get(
                f"http://{validator}:5000/v3/auth/tokens",
                headers={"X-Auth-Token": token, "X-Subject-Token": token},
                timeout=30,
            )
            assert check.status_code == 200, f"token from {issuer} rejected by {validator}: {check.text}"

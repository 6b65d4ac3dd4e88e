"""Swift seen from the deploy host: objects through the public endpoint with Keystone (openstacksdk and the openstack
CLI), the same rings on every swift host, and storage servers that answer their health checks and swift-recon."""

import hashlib
import os
import re
import secrets as random_bytes
import subprocess
import urllib.request
import uuid

import pytest
import requests

RINGS = ("account", "container", "object")
# Registry ports of the storage servers (services/swift.yml).
SERVER_PORTS = {"account": 6202, "container": 6201, "object": 6200}


@pytest.fixture(scope="module")
def swift_hosts(inventory):
    return sorted(set(inventory["groups"]["controller"]) | set(inventory["groups"]["storage"]))


@pytest.fixture(scope="module")
def swift_venv(remote, inventory):
    """The venv the running object server comes from (its unit's ExecStart)."""
    exec_start = remote(inventory["groups"]["storage"][0]).check_output(
        "systemctl show --property=ExecStart --value swift-object-server"
    )
    return re.search(r"path=(\S+)/bin/swift-object-server", exec_start).group(1)


@pytest.fixture(scope="module")
def openstack_cmd(clouds_yaml):
    """Runs `openstack <args>` as the admin user, for commands without JSON output."""
    env = dict(os.environ, OS_CLIENT_CONFIG_FILE=str(clouds_yaml), OS_CLOUD="stackwright")
    return lambda *args: subprocess.run(["openstack", *args], env=env, check=True, capture_output=True, text=True)


def test_catalog_names_the_project_account_on_the_public_vip(conn, inventory):
    hostvars = next(iter(inventory["hostvars"].values()))
    endpoint = conn.object_store.get_endpoint().rstrip("/")
    assert endpoint == f"https://{hostvars['public_vip_address']}:8080/v1/AUTH_{conn.current_project_id}"


def test_account_refuses_a_request_without_a_token(conn, ca_file):
    response = requests.get(conn.object_store.get_endpoint(), verify=str(ca_file), timeout=30)
    assert response.status_code == 401


def test_object_roundtrip_keeps_every_byte(conn):
    container = f"molecule-{uuid.uuid4().hex[:8]}"
    data = random_bytes.token_bytes(2 * 1024 * 1024 + 31)
    conn.object_store.create_container(name=container)
    try:
        conn.object_store.upload_object(container=container, name="blob.bin", data=data)
        listed = {o.name: o.content_length for o in conn.object_store.objects(container)}
        assert listed == {"blob.bin": len(data)}
        downloaded = conn.object_store.download_object("blob.bin", container=container)
        assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(data).hexdigest()
        conn.object_store.delete_object("blob.bin", container=container)
        assert list(conn.object_store.objects(container)) == []
    finally:
        conn.object_store.delete_object("blob.bin", container=container, ignore_missing=True)
        conn.object_store.delete_container(container, ignore_missing=True)
    assert container not in {c.name for c in conn.object_store.containers()}


def test_cli_creates_lists_and_deletes_a_container(cli, openstack_cmd, tmp_path):
    container = f"molecule-cli-{uuid.uuid4().hex[:8]}"
    payload = tmp_path / "hello.txt"
    payload.write_bytes(b"stackwright swift\n")
    cli("container", "create", container)
    try:
        assert container in {c["Name"] for c in cli("container", "list")}
        cli("object", "create", container, str(payload), "--name", "hello.txt")
        assert [o["Name"] for o in cli("object", "list", container)] == ["hello.txt"]
        shown = cli("object", "show", container, "hello.txt")
        assert int(shown["content-length"]) == len(payload.read_bytes())
        assert shown["etag"] == hashlib.md5(payload.read_bytes(), usedforsecurity=False).hexdigest()
    finally:
        openstack_cmd("container", "delete", "--recursive", container)
    assert container not in {c["Name"] for c in cli("container", "list")}


def test_every_swift_host_has_the_same_rings(remote, swift_hosts):
    sums = {}
    for name in swift_hosts:
        out = remote(name).check_output("sha256sum " + " ".join(f"/etc/swift/{r}.ring.gz" for r in RINGS))
        sums[name] = {line.split()[1]: line.split()[0] for line in out.splitlines()}
        assert len(sums[name]) == len(RINGS), out
    assert len({tuple(sorted(s.items())) for s in sums.values()}) == 1, sums


def test_storage_servers_answer_their_health_check(inventory):
    for name in inventory["groups"]["storage"]:
        address = inventory["hostvars"][name].get(
            "swift_storage_address", inventory["hostvars"][name]["management_address"]
        )
        for server, port in SERVER_PORTS.items():
            with urllib.request.urlopen(f"http://{address}:{port}/healthcheck", timeout=10) as response:
                assert response.read() == b"OK", f"{name} {server}"


@pytest.mark.parametrize("ring", RINGS)
def test_recon_finds_every_server_with_the_local_ring(remote, inventory, swift_venv, ring):
    # swift-recon asks every server of the ring (its /recon) for the checksum of the ring it loaded.
    out = remote(inventory["groups"]["storage"][0]).check_output(f"{swift_venv}/bin/swift-recon {ring} --md5")
    servers = len(inventory["groups"]["storage"])
    matched = re.search(r"(\d+)/(\d+) hosts matched, (\d+) error", out)
    assert matched, out
    assert matched.groups() == (str(servers), str(servers), "0"), out

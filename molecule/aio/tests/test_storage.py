"""Block storage on Ceph RBD: a healthy cluster with every OSD of the inventory, glance's images in Ceph, cinder's
services up, a volume attached to a running server (the guest sees the disk) then detached, snapshotted, backed up,
uploaded to an image and deleted, a multi-attach volume of the multiattach type, and a volume from a raw image that
is a copy-on-write clone of the image's RBD snapshot, whose image can then be deleted and is purged from the RBD
trash after the clone."""

import json
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml
from guest import guest_ssh

# Debian 13's ceph-mgr 18 cannot load its Python modules (PyO3 refuses subinterpreters) and reports it as a health
# warning; the monitors, OSDs and RBD do not depend on those modules.
KNOWN_HEALTH_CHECKS = {"MGR_MODULE_DEPENDENCY"}
GIB = 1024**3
GLANCE_DEFAULTS = Path(__file__).resolve().parents[3] / "roles" / "glance" / "defaults" / "main.yml"


@pytest.fixture(scope="module")
def ceph_host(inventory):
    """A storage host: it has the admin keyring."""
    return inventory["groups"]["storage"][0]


@pytest.fixture(scope="module")
def ceph(remote, ceph_host):
    def run(*args):
        return remote(ceph_host).check_output("ceph --connect-timeout 10 " + " ".join(args))

    return run


@pytest.fixture(scope="module")
def rbd(remote, ceph_host):
    def run(*args):
        return remote(ceph_host).check_output("rbd " + " ".join(args))

    return run


def test_the_ceph_cluster_is_healthy_with_every_osd_of_the_inventory(ceph, inventory, poll):
    expected = sum(len(inventory["hostvars"][host].get("ceph_osds", [])) for host in inventory["groups"]["storage"])

    def status():
        data = json.loads(ceph("status", "--format", "json"))
        return data if data["osdmap"]["num_up_osds"] == expected and not set(data["health"]["checks"]) - (
            KNOWN_HEALTH_CHECKS) else None  # fmt: skip

    data = poll(status, attempts=30, delay=2)
    assert data, ceph("health", "detail")
    assert data["osdmap"]["num_osds"] == data["osdmap"]["num_in_osds"] == expected
    states = {s["state_name"]: s["count"] for s in data["pgmap"]["pgs_by_state"]}
    assert states == {"active+clean": data["pgmap"]["num_pgs"]}, states


def test_every_cinder_service_is_up_and_enabled(cli, inventory, poll):
    controllers = set(inventory["groups"]["controller"])

    def services():
        found = cli("volume", "service", "list")
        binaries = {s["Binary"] for s in found}
        healthy = all(s["State"] == "up" and s["Status"] == "enabled" for s in found)
        return found if healthy and binaries == {"cinder-scheduler", "cinder-volume", "cinder-backup"} else None

    found = poll(services, attempts=30, delay=2)
    assert found, cli("volume", "service", "list")
    assert {s["Host"] for s in found if s["Binary"] == "cinder-scheduler"} == controllers
    # Every controller's cinder-volume serves the one RBD backend under the shared host name.
    assert {s["Host"] for s in found if s["Binary"] == "cinder-volume"} == {"rbd@rbd"}


def test_glance_keeps_images_in_ceph(conn, rbd):
    image = conn.image.find_image("stackwright-guest", ignore_missing=False)
    assert image.id in rbd("ls", "images").split()


def test_glance_offers_the_configured_import_methods(conn, inventory_vars):
    """glance parses its bounded list of import methods (a malformed one fails every image create)."""
    defaults = yaml.safe_load(GLANCE_DEFAULTS.read_text())
    expected = inventory_vars.get("glance_import_methods", defaults["glance_import_methods"])
    assert sorted(conn.image.get_import_info().import_methods["value"]) == sorted(expected)


def test_glance_has_the_standard_metadata_definitions(conn):
    """glance-manage db_load_metadefs ran: Horizon's metadata dialogs and the image API's metadefs are not empty."""
    assert {"OS::Nova::Server", "OS::Cinder::Volume", "OS::Glance::Image"} <= {
        resource_type.name for resource_type in conn.image.metadef_resource_types()
    }


@pytest.fixture(scope="module")
def volume(project_conn):
    created = project_conn.block_storage.create_volume(size=1, name=f"molecule-vol-{uuid.uuid4().hex[:6]}")
    yield project_conn.block_storage.wait_for_status(created, "available", failures=["error"], interval=2, wait=120)
    project_conn.block_storage.delete_volume(created, ignore_missing=True)


def guest_disks(address, key):
    """{name: size in bytes} of the guest's whole disks, read as Tempest reads them (`lsblk -lb --nodeps`)."""
    result = guest_ssh(address, key, "lsblk -lb --nodeps")
    if result.returncode != 0:
        return None
    rows = [line.split() for line in result.stdout.splitlines()[1:] if line.strip()]
    return {row[0]: int(row[3]) for row in rows if row[5] == "disk"}


def test_a_volume_attaches_to_a_running_server_and_the_guest_sees_it(project_conn, floating, keypair, volume, rbd,
                                                                      poll):  # fmt: skip
    address, server = floating
    key = keypair[0]
    before = poll(lambda: guest_disks(address, key), attempts=10, delay=3)
    assert before, "cannot read the guest's disks over SSH"
    assert f"volume-{volume.id}" in rbd("ls", "volumes").split()
    project_conn.compute.create_volume_attachment(server, volume)
    attached = project_conn.block_storage.wait_for_status(volume, "in-use", failures=["error", "error_attaching"],
                                                          interval=2, wait=180)  # fmt: skip
    assert attached.attachments[0]["server_id"] == server.id

    def new_disks():
        disks = guest_disks(address, key)
        return {name: size for name, size in (disks or {}).items() if name not in before}

    added = poll(new_disks, attempts=30, delay=2)
    assert list(added.values()) == [GIB], f"the guest sees {guest_disks(address, key)}, before {before}"

    project_conn.compute.delete_volume_attachment(server, volume)
    project_conn.block_storage.wait_for_status(volume, "available", failures=["error", "error_detaching"], interval=2,
                                               wait=180)  # fmt: skip
    assert poll(lambda: not new_disks(), attempts=30, delay=2), "the guest still sees the detached disk"


def test_a_volume_snapshot_is_an_rbd_snapshot(project_conn, volume, rbd):
    snapshot = project_conn.block_storage.create_snapshot(volume_id=volume.id, name=f"molecule-{uuid.uuid4().hex[:6]}")
    try:
        project_conn.block_storage.wait_for_status(snapshot, "available", failures=["error"], interval=2, wait=120)
        snaps = json.loads(rbd("snap", "ls", "--format", "json", f"volumes/volume-{volume.id}"))
        assert f"snapshot-{snapshot.id}" in {s["name"] for s in snaps}
    finally:
        project_conn.block_storage.delete_snapshot(snapshot, ignore_missing=True)
        project_conn.block_storage.wait_for_delete(snapshot, interval=2, wait=120)


def test_a_volume_backup_goes_to_the_backup_pool(project_conn, volume, rbd):
    backup = project_conn.block_storage.create_backup(volume_id=volume.id, name=f"molecule-{uuid.uuid4().hex[:6]}")
    try:
        backup = project_conn.block_storage.wait_for_status(backup, "available", failures=["error"], interval=3,
                                                            wait=300)  # fmt: skip
        assert any(volume.id in name for name in rbd("ls", "backups").split()), rbd("ls", "backups")
    finally:
        project_conn.block_storage.delete_backup(backup, ignore_missing=True)
        project_conn.block_storage.wait_for_delete(backup, interval=3, wait=300)


def test_a_volume_uploads_to_an_image(project_conn, volume):
    """cinder-volume streams the volume to glance through the internal VIP as a chunked request body."""
    upload = project_conn.block_storage.upload_volume_to_image(volume, f"molecule-upload-{uuid.uuid4().hex[:6]}",
                                                               disk_format="raw", container_format="bare")  # fmt: skip
    try:
        image = project_conn.image.wait_for_status(project_conn.image.get_image(upload["image_id"]), "active",
                                                   failures=["killed", "deleted"], interval=2, wait=300)  # fmt: skip
        assert image.size == GIB
        project_conn.block_storage.wait_for_status(volume, "available", failures=["error"], interval=2, wait=120)
    finally:
        project_conn.image.delete_image(upload["image_id"], ignore_missing=True)


def test_a_deleted_volume_leaves_no_rbd_image(project_conn, rbd):
    created = project_conn.block_storage.create_volume(size=1, name=f"molecule-vol-{uuid.uuid4().hex[:6]}")
    project_conn.block_storage.wait_for_status(created, "available", failures=["error"], interval=2, wait=120)
    assert f"volume-{created.id}" in rbd("ls", "volumes").split()
    project_conn.block_storage.delete_volume(created)
    project_conn.block_storage.wait_for_delete(created, interval=2, wait=120)
    assert f"volume-{created.id}" not in rbd("ls", "volumes").split()


def test_a_project_makes_multiattach_volumes_with_the_multiattach_type(project_conn, rbd):
    """Two servers writing one RBD image need it without exclusive-lock, which cinder's driver drops for this type."""
    created = project_conn.block_storage.create_volume(size=1, volume_type="multiattach",
                                                       name=f"molecule-multi-{uuid.uuid4().hex[:6]}")  # fmt: skip
    try:
        created = project_conn.block_storage.wait_for_status(created, "available", failures=["error"], interval=2,
                                                             wait=120)  # fmt: skip
        assert created.is_multiattach, created
        features = json.loads(rbd("info", "--format", "json", f"volumes/volume-{created.id}"))["features"]
        assert "exclusive-lock" not in features, features
    finally:
        project_conn.block_storage.delete_volume(created, ignore_missing=True)
        project_conn.block_storage.wait_for_delete(created, interval=2, wait=120)


@pytest.fixture(scope="module")
def raw_image(conn, tmp_path_factory):
    """The guest image converted to raw: only raw images can be cloned."""
    source = conn.image.find_image("stackwright-guest", ignore_missing=False)
    workdir = tmp_path_factory.mktemp("raw-image")
    qcow2, raw = workdir / "guest.qcow2", workdir / "guest.raw"
    with qcow2.open("wb") as handle:
        conn.image.download_image(source, output=handle)
    subprocess.run(["qemu-img", "convert", "-O", "raw", str(qcow2), str(raw)], check=True)
    image = conn.image.create_image(name=f"molecule-raw-{uuid.uuid4().hex[:6]}", filename=str(raw),
                                    disk_format="raw", container_format="bare", wait=True)  # fmt: skip
    yield image
    conn.image.delete_image(image, ignore_missing=True)


def _trash(rbd, pool):
    return {entry["name"] for entry in json.loads(rbd("trash", "ls", "--format", "json", "--long", pool))}


def test_a_volume_from_a_raw_image_is_a_clone_not_a_copy(conn, raw_image, rbd, remote, ceph_host):
    created = conn.block_storage.create_volume(size=1, image_id=raw_image.id, name=f"molecule-{uuid.uuid4().hex[:6]}")
    try:
        conn.block_storage.wait_for_status(created, "available", failures=["error"], interval=2, wait=300)
        info = json.loads(rbd("info", "--format", "json", f"volumes/volume-{created.id}"))
        assert info.get("parent", {}).get("pool") == "images", info
        assert info["parent"]["image"] == raw_image.id, info
        # RBD clone format 2: the image goes although a volume still depends on it (format 1: HTTP 409, in use).
        conn.image.delete_image(raw_image)
        assert conn.image.find_image(raw_image.id) is None
        # glance moved its RBD image to the trash, where it waits for its last clone.
        assert raw_image.id in _trash(rbd, "images")
    finally:
        conn.block_storage.delete_volume(created, ignore_missing=True)
        conn.block_storage.wait_for_delete(created, interval=2, wait=120)
    # Nothing in Ceph removes it once the clone is gone: the role's timer does (its service, run now).
    host = remote(ceph_host)
    assert host.service("stackwright-rbd-trash-purge.timer").is_running
    host.check_output("systemctl start stackwright-rbd-trash-purge.service")
    assert raw_image.id not in _trash(rbd, "images")

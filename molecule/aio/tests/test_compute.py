"""Compute seen from the deploy host: nova's services and hypervisors, a real server booted from the guest image
under libvirt, whose serial console shows the guest's ready line, and a live snapshot of a running server."""

import re
import uuid

import pytest

GUEST_IMAGE = "stackwright-guest"
READY = re.compile(r"^STACKWRIGHT-GUEST-READY .*$", re.M)


@pytest.fixture(scope="module")
def expected_services(inventory):
    """(binary, host) of every nova service the registry places on the inventory's hosts."""
    expected = {("nova-conductor", host) for host in inventory["groups"]["controller"]}
    expected |= {("nova-scheduler", host) for host in inventory["groups"]["controller"]}
    expected |= {("nova-compute", host) for host in inventory["groups"]["compute"]}
    return expected


def test_every_nova_service_is_up_and_enabled(cli, expected_services, poll):
    def states():
        found = {(s["Binary"], s["Host"]): (s["State"], s["Status"]) for s in cli("compute", "service", "list")}
        return found if all(found.get(key) == ("up", "enabled") for key in expected_services) else None

    found = poll(states, attempts=30, delay=3)
    assert found, cli("compute", "service", "list")
    assert set(found) == expected_services


def test_every_compute_host_is_a_hypervisor_that_is_up(cli, inventory):
    hypervisors = {h["Hypervisor Hostname"]: h for h in cli("hypervisor", "list", "--long")}
    assert set(hypervisors) == set(inventory["groups"]["compute"])
    for name, hypervisor in hypervisors.items():
        assert hypervisor["State"] == "up", hypervisor
        assert hypervisor["Hypervisor Type"] == "QEMU", hypervisor
        assert hypervisor["Host IP"] == inventory["hostvars"][name]["management_address"], hypervisor


def test_every_compute_host_is_mapped_to_cell1(remote, inventory):
    controller = inventory["groups"]["controller"][0]
    venv = remote(controller).check_output("ls -d /openstack/venvs/nova-* | sort -V | tail -n 1")
    out = remote(controller).check_output(f"{venv}/bin/nova-manage cell_v2 list_hosts")
    mapped = {row.split("|")[-2].strip() for row in out.splitlines()[3:-1]}
    assert mapped == set(inventory["groups"]["compute"]), out


def test_a_server_boots_on_every_compute_host_shows_its_ready_line_and_is_deleted(
    conn, inventory, poll, delete_servers
):
    image = conn.image.find_image(GUEST_IMAGE, ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.micro", ignore_missing=False)
    names = {host: f"molecule-{host}-{uuid.uuid4().hex[:6]}" for host in inventory["groups"]["compute"]}
    servers = {}
    try:
        # All at once, each pinned to its compute host (admin only), without a port (compute API 2.37+).
        for host, name in names.items():
            servers[host] = conn.compute.create_server(
                name=name, image_id=image.id, flavor_id=flavor.id, networks="none", availability_zone=f"nova:{host}"
            )
        for host, server in servers.items():
            server = conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=3, wait=600)
            assert server.compute_host == host, server

            def ready_line(server_id=server.id):
                return READY.search(conn.compute.get_server_console_output(server_id)["output"] or "")

            ready = poll(ready_line, attempts=90, delay=2)
            assert ready, conn.compute.get_server_console_output(server.id)["output"][-2000:]
            assert "ip=none" in ready.group(0)
    finally:
        delete_servers(conn, list(servers.values()))
    assert all(conn.compute.find_server(name) is None for name in names.values())


def test_a_running_server_snapshots_to_an_image(project_conn, servers):
    """A live snapshot: libvirt copies the running disk into nova's snapshot directory, nova uploads it to glance."""
    server = servers[0][0]
    image = project_conn.compute.create_server_image(server, name=f"molecule-snap-{uuid.uuid4().hex[:6]}", wait=True,
                                                     timeout=300)  # fmt: skip
    try:
        assert (image.status, image.size > 0) == ("active", True), image
        assert project_conn.compute.get_server(server).status == "ACTIVE"
    finally:
        project_conn.image.delete_image(image, ignore_missing=True)

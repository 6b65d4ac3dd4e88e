"""Compute seen from the deploy host: nova's services and hypervisors, and a real server booted from the guest image
under libvirt, whose serial console shows the guest's ready line."""

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


def servers_on_hypervisors(conn):
    """Hypervisor host name -> ids of its servers (compute API 2.53+, admin)."""
    hypervisors = conn.compute.get("/os-hypervisors/detail?with_servers=true", microversion="2.53").json()
    return {h["hypervisor_hostname"]: {s["uuid"] for s in h.get("servers", [])} for h in hypervisors["hypervisors"]}


def server_in_state(conn, name, status):
    # The server index: nova's server details also ask the network service (security groups), which is not
    # deployed yet.
    return next(iter(conn.compute.servers(details=False, name=f"^{name}$", status=status)), None)


def test_a_server_boots_on_every_compute_host_and_shows_its_ready_line(conn, inventory, poll):
    image = conn.image.find_image(GUEST_IMAGE, ignore_missing=False)
    flavor = conn.compute.find_flavor("m1.micro", ignore_missing=False)
    names = {host: f"molecule-{host}-{uuid.uuid4().hex[:6]}" for host in inventory["groups"]["compute"]}
    # All at once, each pinned to its compute host (admin only); no network service yet, so no port (API 2.37+).
    created = {
        host: conn.compute.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id, networks="none", availability_zone=f"nova:{host}"
        )
        for host, name in names.items()
    }
    for host, name in names.items():

        def settled(name=name):
            return next((status for status in ("ERROR", "ACTIVE") if server_in_state(conn, name, status)), None)

        assert poll(settled, attempts=150, delay=2) == "ACTIVE", f"{name} did not become ACTIVE"
        assert created[host].id in servers_on_hypervisors(conn)[host]

        def ready_line(server_id=created[host].id):
            return READY.search(conn.compute.get_server_console_output(server_id)["output"] or "")

        ready = poll(ready_line, attempts=90, delay=2)
        assert ready, conn.compute.get_server_console_output(created[host].id)["output"][-2000:]
        assert "ip=none" in ready.group(0)
    # Deleting a server needs the network service (nova-compute releases its ports there): until neutron is
    # deployed, stop the guests so they free the host's CPU and memory.
    for server in created.values():
        conn.compute.stop_server(server)
    for name in names.values():
        assert poll(lambda name=name: server_in_state(conn, name, "SHUTOFF"), 60, 2), f"{name} did not stop"

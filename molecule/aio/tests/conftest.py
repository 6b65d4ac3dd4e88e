"""Fixtures of the tests that need servers with working networking: the demo project of the inventory, a key pair,
one booted server per compute host (at most two) on the demo network, and a floating IP for the first one. Session
scope: the network and storage tests share the same servers instead of booting their own."""

import shutil
import subprocess
import uuid

import pytest
from guest import GUEST_HTTP_PORT, GUEST_IMAGE, READY


@pytest.fixture(scope="session")
def inventory_vars(inventory):
    return next(iter(inventory["hostvars"].values()))


@pytest.fixture(scope="session")
def demo(inventory_vars):
    """The first self-service network the inventory names, with its project and router."""
    networks = inventory_vars.get("neutron_self_service_networks") or []
    if not networks:
        pytest.skip("the inventory names no self-service network (neutron_self_service_networks)")
    return networks[0]


@pytest.fixture(scope="session")
def project_conn(conn, demo):
    """The admin user, scoped to the demo project (it has the member role there)."""
    return conn.connect_as_project(demo["project"])


@pytest.fixture(scope="session")
def keypair(project_conn, tmp_path_factory):
    if shutil.which("ssh-keygen") is None or shutil.which("ssh") is None:
        pytest.skip("ssh and ssh-keygen are not installed (apt-get install openssh-client)")
    key = tmp_path_factory.mktemp("guest-key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    created = project_conn.compute.create_keypair(name=f"molecule-{uuid.uuid4().hex[:8]}",
                                                  public_key=(key.parent / "id_ed25519.pub").read_text())  # fmt: skip
    yield key, created.name
    project_conn.compute.delete_keypair(created, ignore_missing=True)


@pytest.fixture(scope="session")
def web_group(project_conn):
    """A security group that lets the guests' HTTP responder be reached."""
    group = project_conn.network.create_security_group(name=f"molecule-web-{uuid.uuid4().hex[:6]}")
    project_conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="tcp", port_range_min=GUEST_HTTP_PORT,
        port_range_max=GUEST_HTTP_PORT, remote_ip_prefix="0.0.0.0/0",
    )  # fmt: skip
    yield group
    project_conn.network.delete_security_group(group, ignore_missing=True)


@pytest.fixture(scope="session")
def servers(project_conn, demo, inventory, keypair, web_group, poll, delete_servers):
    """One server per compute host, at most two, on the demo network, each ACTIVE and showing its ready line; with two
    compute hosts an anti-affinity group puts them on different ones. Yields [(server, ready match)]."""
    count = min(2, len(inventory["groups"]["compute"]))
    image = project_conn.image.find_image(GUEST_IMAGE, ignore_missing=False)
    flavor = project_conn.compute.find_flavor("m1.micro", ignore_missing=False)
    network = project_conn.network.find_network(demo["name"], ignore_missing=False)
    group = project_conn.compute.create_server_group(name=f"molecule-{uuid.uuid4().hex[:6]}", policy="anti-affinity")
    created = []
    try:
        for index in range(count):
            created.append(project_conn.compute.create_server(
                name=f"molecule-net-{index}-{uuid.uuid4().hex[:6]}", image_id=image.id, flavor_id=flavor.id,
                networks=[{"uuid": network.id}], key_name=keypair[1],
                security_groups=[{"name": "default"}, {"name": web_group.name}], scheduler_hints={"group": group.id},
            ))  # fmt: skip
        booted = []
        for server in created:
            server = project_conn.compute.wait_for_server(server, status="ACTIVE", failures=["ERROR"], interval=3,
                                                          wait=600)  # fmt: skip

            def ready_line(server_id=server.id):
                return READY.search(project_conn.compute.get_server_console_output(server_id)["output"] or "")

            ready = poll(ready_line, attempts=90, delay=2)
            assert ready, project_conn.compute.get_server_console_output(server.id)["output"][-3000:]
            booted.append((server, ready))
        yield booted
    finally:
        delete_servers(project_conn, created)
        project_conn.compute.delete_server_group(group, ignore_missing=True)


@pytest.fixture(scope="session")
def floating(project_conn, demo, servers):
    """A floating IP on the external network for the first server; yields (address, server)."""
    server = servers[0][0]
    external = project_conn.network.find_network(demo["external_network"], ignore_missing=False)
    port = next(project_conn.network.ports(device_id=server.id))
    address = project_conn.network.create_ip(floating_network_id=external.id, port_id=port.id)
    yield address.floating_ip_address, server
    project_conn.network.delete_ip(address, ignore_missing=True)

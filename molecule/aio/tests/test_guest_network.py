"""Servers with working networking: the demo project's self-service network and router from the inventory, a server
that gets its address from OVN's DHCP and its metadata through neutron's OVN agent, a floating IP that the deploy host
reaches over TCP (HTTP and SSH with the key from metadata), and, with two compute hosts, servers on different
computes that reach each other across the tunnel."""

import re
import shutil
import subprocess
import urllib.request
import uuid

import pytest

GUEST_IMAGE = "stackwright-guest"
READY = re.compile(r"^STACKWRIGHT-GUEST-READY ip=(\S+) metadata=(\S+) hostname=(\S+)", re.M)
GUEST_HTTP_PORT = 8080
# The neutron role's default for neutron_default_security_group_rules.
DEFAULT_RULES = [{"protocol": "icmp"}, {"protocol": "tcp", "port": 22}]


@pytest.fixture(scope="module")
def inventory_vars(inventory):
    return next(iter(inventory["hostvars"].values()))


@pytest.fixture(scope="module")
def demo(inventory_vars):
    """The first self-service network the inventory names, with its project and router."""
    networks = inventory_vars.get("neutron_self_service_networks") or []
    if not networks:
        pytest.skip("the inventory names no self-service network (neutron_self_service_networks)")
    return networks[0]


@pytest.fixture(scope="module")
def project_conn(conn, demo):
    """The admin user, scoped to the demo project (it has the member role there)."""
    return conn.connect_as_project(demo["project"])


def test_the_external_network_and_the_demo_router_exist(conn, demo, inventory_vars):
    external = conn.network.find_network(demo["external_network"], ignore_missing=False)
    assert external.is_router_external
    provider = next(n for n in inventory_vars["neutron_provider_networks"] if n["name"] == external.name)
    assert external.provider_physical_network == provider["physical_network"]
    project = conn.identity.find_project(demo["project"], ignore_missing=False)
    router = conn.network.find_router(demo["router"], project_id=project.id, ignore_missing=False)
    assert router.external_gateway_info["network_id"] == external.id
    network = conn.network.find_network(demo["name"], project_id=project.id, ignore_missing=False)
    subnet_ids = {port.fixed_ips[0]["subnet_id"] for port in conn.network.ports(device_id=router.id)
                  if port.network_id == network.id}  # fmt: skip
    assert subnet_ids == set(network.subnet_ids), "the demo router has no interface on the demo network"


def test_the_default_security_group_lets_icmp_and_ssh_in(project_conn, inventory_vars):
    group = project_conn.network.find_security_group("default", project_id=project_conn.current_project_id,
                                                     ignore_missing=False)  # fmt: skip
    ingress = {(r.protocol, r.port_range_min) for r in project_conn.network.security_group_rules(
        security_group_id=group.id, direction="ingress") if r.remote_group_id is None}  # fmt: skip
    rules = inventory_vars.get("neutron_default_security_group_rules", DEFAULT_RULES)
    wanted = {(r["protocol"], r.get("port")) for r in rules}
    assert wanted <= ingress


@pytest.fixture(scope="module")
def keypair(project_conn, tmp_path_factory):
    if shutil.which("ssh-keygen") is None or shutil.which("ssh") is None:
        pytest.skip("ssh and ssh-keygen are not installed (apt-get install openssh-client)")
    key = tmp_path_factory.mktemp("guest-key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    created = project_conn.compute.create_keypair(name=f"molecule-{uuid.uuid4().hex[:8]}",
                                                  public_key=(key.parent / "id_ed25519.pub").read_text())  # fmt: skip
    yield key, created.name
    project_conn.compute.delete_keypair(created, ignore_missing=True)


@pytest.fixture(scope="module")
def web_group(project_conn):
    """A security group that lets the guests' HTTP responder be reached."""
    group = project_conn.network.create_security_group(name=f"molecule-web-{uuid.uuid4().hex[:6]}")
    project_conn.network.create_security_group_rule(
        security_group_id=group.id, direction="ingress", protocol="tcp", port_range_min=GUEST_HTTP_PORT,
        port_range_max=GUEST_HTTP_PORT, remote_ip_prefix="0.0.0.0/0",
    )  # fmt: skip
    yield group
    project_conn.network.delete_security_group(group, ignore_missing=True)


@pytest.fixture(scope="module")
def servers(project_conn, demo, inventory, keypair, web_group, poll):
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
        for server in created:
            project_conn.compute.delete_server(server, ignore_missing=True)
        for server in created:
            project_conn.compute.wait_for_delete(server, interval=2, wait=180)
        project_conn.compute.delete_server_group(group, ignore_missing=True)


def fixed_address(server):
    return next(a["addr"] for addresses in server.addresses.values() for a in addresses
                if a.get("OS-EXT-IPS:type") == "fixed")  # fmt: skip


def test_every_compute_host_runs_an_alive_ovn_agent(cli, inventory, poll):
    def agents():
        found = {a["Host"]: a for a in cli("network", "agent", "list") if a["Agent Type"] == "OVN Neutron agent"}
        alive = all(a["Alive"] for a in found.values())
        return found if set(found) == set(inventory["groups"]["compute"]) and alive else None

    assert poll(agents, attempts=30, delay=2), cli("network", "agent", "list")


def test_servers_get_their_address_from_ovn_dhcp_and_read_metadata(project_conn, servers):
    for server, ready in servers:
        server = project_conn.compute.get_server(server.id)
        assert ready.group(1) == fixed_address(server), ready.group(0)
        assert ready.group(2) == "ok", ready.group(0)
        # The name came from the metadata service (nova adds its DHCP domain).
        assert ready.group(3).split(".")[0] == server.name, ready.group(0)


@pytest.fixture(scope="module")
def floating(project_conn, demo, servers):
    """A floating IP on the external network for the first server; yields (address, server)."""
    server = servers[0][0]
    external = project_conn.network.find_network(demo["external_network"], ignore_missing=False)
    port = next(project_conn.network.ports(device_id=server.id))
    address = project_conn.network.create_ip(floating_network_id=external.id, port_id=port.id)
    yield address.floating_ip_address, server
    project_conn.network.delete_ip(address, ignore_missing=True)


def http_get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 (a lab address, plain HTTP on purpose)
            return response.read().decode()
    except OSError:
        return None


def guest_ssh(address, key, command):
    return subprocess.run(
        ["ssh", "-F", "/dev/null", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "BatchMode=yes",
         f"root@{address}", command],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_the_deploy_host_reaches_a_server_through_its_floating_ip(floating, keypair, poll):
    address, server = floating
    key = keypair[0]
    body = poll(lambda: http_get(f"http://{address}:{GUEST_HTTP_PORT}/"), attempts=30, delay=2)
    assert body, f"nothing answered on http://{address}:{GUEST_HTTP_PORT}/"
    assert f"hostname={server.name}" in body and f" ip={fixed_address(server)}" in body, body
    # SSH with the key the guest read from the metadata service.
    result = poll(lambda: (r := guest_ssh(address, key, "hostname")).returncode == 0 and r, attempts=10, delay=3)
    assert result, guest_ssh(address, key, "hostname").stderr
    assert result.stdout.strip().split(".")[0] == server.name


def test_servers_on_different_computes_reach_each_other(conn, servers, floating, keypair, poll):
    if len(servers) < 2:
        pytest.skip("needs two or more compute hosts")
    # The compute host is shown to admins only: the admin project's connection.
    hosts = {conn.compute.get_server(server.id).compute_host for server, _ in servers}
    assert len(hosts) == 2, hosts
    address, first = floating
    other = next(server for server, _ in servers if server.id != first.id)
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {fixed_address(other)} {GUEST_HTTP_PORT}"
    key = keypair[0]
    result = poll(lambda: (r := guest_ssh(address, key, request)).returncode == 0 and other.name in r.stdout and r,
                  attempts=10, delay=3)  # fmt: skip
    assert result, guest_ssh(address, key, request)

"""Servers with working networking: the demo project's self-service network and router from the inventory, a server
that gets its address from OVN's DHCP and its metadata through neutron's OVN agent, a floating IP that the deploy host
reaches over TCP (HTTP and SSH with the key from metadata), and, with two compute hosts, servers on different
computes that reach each other across the tunnel."""

import pytest
from guest import GUEST_HTTP_PORT, fixed_address, guest_ssh, http_get

# The neutron role's default for neutron_default_security_group_rules.
DEFAULT_RULES = [{"protocol": "icmp"}, {"protocol": "tcp", "port": 22}]


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

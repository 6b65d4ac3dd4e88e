"""Neutron with ML2/OVN seen from the deploy host: its endpoints, the OVN chassis as network agents, a network,
subnet and port that neutron writes into the OVN northbound database, and a network on request (auto allocation)."""

import uuid

import pytest


def test_catalog_has_the_network_service_on_both_vips(cli, inventory):
    hostvars = next(iter(inventory["hostvars"].values()))
    catalog = {entry["Type"]: entry["Endpoints"] for entry in cli("catalog", "list")}
    urls = {e["interface"]: e["url"] for e in catalog["network"]}
    assert urls == {
        "public": f"https://{hostvars['public_vip_address']}:9696",
        "internal": f"https://{hostvars['internal_vip_address']}:9696",
    }


def test_every_chassis_is_an_alive_ovn_agent(cli, inventory, poll):
    chassis = set(inventory["groups"]["compute"]) | set(inventory["groups"]["network"])

    def agents():
        found = {(a["Host"], a["Agent Type"]): a for a in cli("network", "agent", "list")}
        controllers = {host for host, kind in found if kind in ("OVN Controller agent", "OVN Controller Gateway agent")}
        return found if controllers == chassis and all(a["Alive"] for a in found.values()) else None

    found = poll(agents, attempts=30, delay=2)
    assert found, cli("network", "agent", "list")
    gateways = {host for host, kind in found if kind == "OVN Controller Gateway agent"}
    assert gateways == set(inventory["groups"]["network"])


@pytest.fixture
def network(conn):
    created = conn.network.create_network(name=f"molecule-{uuid.uuid4().hex[:8]}")
    yield created
    for port in conn.network.ports(network_id=created.id):
        conn.network.delete_port(port)
    conn.network.delete_network(created)


def test_a_network_subnet_and_port_reach_the_ovn_northbound_database(conn, network, remote, inventory):
    assert network.provider_network_type == "geneve"
    subnet = conn.network.create_subnet(network_id=network.id, ip_version=4, cidr="192.0.2.0/24", name=network.name)
    port = conn.network.create_port(network_id=network.id, name=network.name)
    assert port.fixed_ips[0]["subnet_id"] == subnet.id

    controller = remote(inventory["groups"]["controller"][0])
    switch = f"neutron-{network.id}"
    name = controller.check_output(f"ovn-nbctl --no-leader-only get Logical_Switch {switch} "
                                   "'external_ids:\"neutron:network_name\"'")  # fmt: skip
    assert name.strip('"') == network.name
    ports = controller.check_output(f"ovn-nbctl --no-leader-only lsp-list {switch}")
    assert port.id in ports
    addresses = controller.check_output(f"ovn-nbctl --no-leader-only lsp-get-addresses {port.id}")
    assert port.mac_address in addresses and port.fixed_ips[0]["ip_address"] in addresses
    # OVN's own DHCP answers on the subnet: neutron wrote its options.
    dhcp = controller.check_output(
        f"ovn-nbctl --no-leader-only --bare --columns=cidr find DHCP_Options external_ids:subnet_id={subnet.id}"
    )
    assert dhcp == "192.0.2.0/24"


def test_a_project_can_get_a_network_on_request(conn, inventory):
    """The default external network and subnet pool let neutron allocate a project's topology ("get me a network");
    neutron's dry run checks both without allocating anything."""
    hostvars = next(iter(inventory["hostvars"].values()))
    if not any(network.get("is_default") for network in hostvars.get("neutron_provider_networks", [])):
        pytest.skip("the inventory names no default external network")
    # Raises (HTTP 409, naming what is missing) when the external network or the subnet pool is not a default one.
    conn.network.validate_auto_allocated_topology(conn.current_project_id)

"""OVN as its own clients see it: clustered databases on every controller, every compute and network host registered
as a chassis with its tunnel address, and packets between two ports of a logical switch bound on two chassis (on
one host in the all-in-one lab)."""

import re
import uuid

import pytest

NB = "ovn-nbctl --no-leader-only"
SB = "ovn-sbctl --no-leader-only"


@pytest.fixture(scope="module")
def controller(remote, inventory):
    return remote(inventory["groups"]["controller"][0])


@pytest.fixture(scope="module")
def chassis_hosts(inventory):
    return sorted(set(inventory["groups"]["compute"]) | set(inventory["groups"]["network"]))


def test_both_databases_are_clusters_of_every_controller(remote, inventory):
    controllers = inventory["groups"]["controller"]
    for name in controllers:
        for db, schema in (("nb", "OVN_Northbound"), ("sb", "OVN_Southbound")):
            status = remote(name).check_output(f"ovn-appctl -t /var/run/ovn/ovn{db}_db.ctl cluster/status {schema}")
            assert "Status: cluster member" in status, status
            servers = status.split("Servers:", 1)[1]
            assert len(re.findall(r"^\s+\S+ \(\S+ at tcp:", servers, re.M)) == len(controllers), status


def test_every_chassis_is_registered_with_its_tunnel_address(controller, inventory, chassis_hosts):
    show = controller.check_output(f"{SB} show")
    chassis = re.compile(r'^Chassis "?([^"\s]+)"?\n(?:\s+hostname:.*\n)?\s+Encap geneve\n\s+ip: "([^"]+)"', re.M)
    found = dict(chassis.findall(show))
    assert found == {name: inventory["hostvars"][name]["tunnel_address"] for name in chassis_hosts}, show


def test_network_hosts_are_gateway_chassis(controller, inventory, chassis_hosts):
    for name in chassis_hosts:
        options = controller.check_output(f"{SB} get Chassis {name} other_config:ovn-cms-options || true")
        assert ("enable-chassis-as-gw" in options) == (name in inventory["groups"]["network"]), (name, options)


def test_the_datapath_is_the_kernels_only_where_the_kernel_has_one(remote, chassis_hosts):
    for name in chassis_hosts:
        host = remote(name)
        kernel = host.run("test -d /sys/module/openvswitch").rc == 0
        datapath = host.check_output("ovs-vsctl get Bridge br-int datapath_type").strip('"')
        assert datapath == ("system" if kernel else "netdev"), name


def test_two_ports_of_a_logical_switch_reach_each_other(remote, controller, chassis_hosts, poll):
    # Across the tunnel where there are two chassis; on one chassis (all-in-one) through br-int only.
    hosts = (chassis_hosts * 2)[:2] if len(chassis_hosts) < 2 else chassis_hosts[:2]
    tag = uuid.uuid4().hex[:6]
    switch = f"molecule-{tag}"
    ports = [
        {"host": host, "lsp": f"{switch}-{i}", "ns": f"mol{tag}{i}", "veth": f"mv{tag}{i}", "ip": f"192.0.2.{10 + i}",
         "mac": f"0a:00:00:00:{tag[:2]}:{10 + i:02x}"}
        for i, host in enumerate(hosts)
    ]  # fmt: skip
    try:
        controller.check_output(f"{NB} ls-add {switch}")
        for port in ports:
            controller.check_output(f"{NB} lsp-add {switch} {port['lsp']} -- lsp-set-addresses {port['lsp']} "
                                    f"'{port['mac']} {port['ip']}'")  # fmt: skip
            remote(port["host"]).check_output(
                f"ip netns add {port['ns']} && ip link add {port['veth']} type veth peer name eth0 netns {port['ns']}"
                f" && ip -n {port['ns']} link set eth0 address {port['mac']}"
                f" && ip -n {port['ns']} addr add {port['ip']}/24 dev eth0 && ip -n {port['ns']} link set eth0 up"
                f" && ip -n {port['ns']} link set lo up && ip link set {port['veth']} up"
                # The userspace datapath passes packets with unfinished checksums: no TX offload on either end.
                f" && ethtool -K {port['veth']} tx off >/dev/null && ip netns exec {port['ns']} ethtool -K eth0 tx off"
                f" >/dev/null && ovs-vsctl add-port br-int {port['veth']} -- set Interface {port['veth']}"
                f" external_ids:iface-id={port['lsp']}"
            )

        def bound():
            return all(
                controller.check_output(f"{SB} --bare --columns=chassis find Port_Binding logical_port={p['lsp']}")
                for p in ports
            )

        assert poll(bound, attempts=30, delay=2), controller.check_output(f"{SB} show")
        first, second = ports
        ping = remote(first["host"]).run(f"ip netns exec {first['ns']} ping -c 3 -W 2 {second['ip']}")
        assert ping.rc == 0, ping.stdout + ping.stderr
    finally:
        controller.run(f"{NB} --if-exists ls-del {switch}")
        for port in ports:
            remote(port["host"]).run(
                f"ovs-vsctl --if-exists del-port br-int {port['veth']}; ip link del {port['veth']};"
                f" ip netns del {port['ns']}"
            )

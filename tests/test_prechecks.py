# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""playbooks/prechecks.yml: every bad inventory stops the run before any host is contacted.

Hosts point at 127.0.0.1 port 9 over SSH, so any attempt to reach one shows up as UNREACHABLE.
"""

import json
import secrets
import shutil
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.stackwright.cloud.plugins.module_utils.capabilities import CAPABILITY_BITS, bounding_set
from ansible_collections.stackwright.cloud.plugins.plugin_utils.registry import (
    SECRET_MIN_LENGTH,
    load_registry,
    required_secrets,
)
from playbook_run import run_playbook

REPO = Path(__file__).resolve().parent.parent
PLAYBOOK = REPO / "playbooks" / "prechecks.yml"
REQUIRED = required_secrets(load_registry(REPO / "services"))
SETUP_TASK = "Gather minimal facts (read-only)"
UNREACHABLE_HOST = {
    "ansible_host": "127.0.0.1",
    "ansible_port": 9,
    "ansible_connection": "ssh",
    "ansible_user": "nobody",
}


PUBLIC_NETWORK = {"name": "public", "physical_network": "physnet1", "network_type": "flat", "external": True}
DEMO_NETWORK = {"name": "demo-net", "project": "demo", "cidr": "192.168.100.0/24", "router": "demo-router",
                "external_network": "public"}  # fmt: skip


def mapped_provider(inv):
    """net1 bridges physnet1 and the inventory names a public network on it."""
    inv["hosts"]["net1"].update(ovn_bridge_mappings={"physnet1": "br-ex"}, ovn_bridge_interfaces={"br-ex": "eth2"})
    inv["vars"]["neutron_provider_networks"] = [PUBLIC_NETWORK]


def ceph_cluster(inv):
    """ceph_mode deploy: ctl1 (the storage host) runs the monitor and one disk OSD."""
    inv["vars"]["ceph_mode"] = "deploy"
    inv["groups"]["ceph_mon"] = ["ctl1"]
    inv["hosts"]["ctl1"]["ceph_osds"] = [{"path": "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4"}]


SWIFT_LOOP = {"name": "d1", "type": "loop", "size": "2G"}


def swift_devices(host, *devices):
    """Host `host` has these swift_devices (each a dict, or anything else to test a bad entry)."""
    return set_host(host, "swift_devices", list(devices))


def storage_host(host):
    """`host` joins the storage group (with a swift device, so only the check under test complains)."""

    def mutate(inv):
        inv["groups"]["storage"].append(host)
        inv["hosts"][host]["swift_devices"] = [dict(SWIFT_LOOP)]

    return mutate


def good_inventory():
    """A valid multi-host inventory: 1 controller+storage, 1 network, 2 compute hosts."""
    hosts = {
        "ctl1": {"management_address": "10.0.0.11", "swift_devices": [dict(SWIFT_LOOP)]},
        "net1": {"management_address": "10.0.0.12", "tunnel_address": "10.0.1.12"},
        "cmp1": {"management_address": "10.0.0.21", "tunnel_address": "10.0.1.21"},
        "cmp2": {"management_address": "10.0.0.22", "tunnel_address": "10.0.1.22"},
    }
    for host_vars in hosts.values():
        host_vars.update(UNREACHABLE_HOST)
    return {
        "hosts": hosts,
        "groups": {
            "controller": ["ctl1"],
            "network": ["net1"],
            "compute": ["cmp1", "cmp2"],
            "storage": ["ctl1"],
            "glance_api": ["ctl1"],
            "cinder_backup": ["ctl1"],
        },
        "vars": {
            "openstack_release": "2026.2",
            "management_network": "10.0.0.0/24",
            "tunnel_network": "10.0.1.0/24",
            "internal_vip_address": "10.0.0.250",
            "public_vip_address": "10.0.0.251",
        },
        "secrets": {name: secret_value(name) for name in REQUIRED},
    }


def secret_value(name):
    """A value of the shape generate-secrets gives `name` (a key pair for `_ssh_key`, text otherwise)."""
    if name.endswith("_ssh_key"):
        body = secrets.token_urlsafe(48)
        return {
            "private_key": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{body}\n-----END OPENSSH PRIVATE KEY-----\n",
            "public_key": f"ssh-ed25519 {secrets.token_urlsafe(32)} test@stackwright",
        }
    return secrets.token_urlsafe(32)


SSH_KEY_SECRET = next(name for name in REQUIRED if name.endswith("_ssh_key"))


def write_inventory(directory, inv):
    directory.mkdir()
    (directory / "group_vars" / "all").mkdir(parents=True)
    children = {group: {"hosts": dict.fromkeys(members)} for group, members in inv["groups"].items()}
    hosts = {"all": {"hosts": inv["hosts"], "children": children}}
    (directory / "hosts.yml").write_text("---\n" + yaml.safe_dump(hosts, sort_keys=False))
    (directory / "group_vars" / "all" / "main.yml").write_text("---\n" + yaml.safe_dump(inv["vars"], sort_keys=False))
    (directory / "secrets.yml").write_text("---\n" + yaml.safe_dump(inv["secrets"]))
    return directory


def run_prechecks(tmp_path, inv, *args, **env):
    inventory = write_inventory(tmp_path / "inventory", inv)
    proc = run_playbook(
        tmp_path, inventory, PLAYBOOK.name, *args, **env,
        ANSIBLE_STDOUT_CALLBACK="ansible.builtin.json",
        # An empty list crashes ansible-core 2.21 ("non-empty plugin name"); naming the stdout
        # callback again loads nothing extra, so profile_tasks and timer stay out of the JSON.
        ANSIBLE_CALLBACKS_ENABLED="ansible.builtin.json",
    )  # fmt: skip
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON from ansible-playbook (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc, report


def task_results(report):
    """(play name, task name, host, result) for every host result in the run."""
    for play in report["plays"]:
        for task in play["tasks"]:
            for host, result in task["hosts"].items():
                yield play["play"]["name"], task["task"]["name"], host, result


def failure_messages(report):
    messages = []
    for _, _, _, result in task_results(report):
        # Loop items carry no `failed` key in the JSON, only the assert's evaluated_to.
        for res in [result, *result.get("results", [])]:
            if res.get("failed") or res.get("evaluated_to") is False:
                messages.append(str(res.get("msg", "")))
    return "\n".join(messages)


def assert_no_host_touched(report):
    unreachable = {host: stats["unreachable"] for host, stats in report["stats"].items() if stats["unreachable"]}
    assert not unreachable, f"hosts were contacted: {unreachable}"
    assert not any(result.get("unreachable") for *_, result in task_results(report))
    ran_setup = sorted({host for _, task, host, _ in task_results(report) if task == SETUP_TASK})
    assert not ran_setup, f"the host play ran on {ran_setup}"


def delete(section, key):
    def mutate(inv):
        del inv[section][key]

    return mutate


def set_value(section, key, value):
    def mutate(inv):
        inv[section][key] = value

    return mutate


def set_host(host, key, value):
    def mutate(inv):
        if value is None:
            del inv["hosts"][host][key]
        else:
            inv["hosts"][host][key] = value

    return mutate


def combine(*mutators):
    def mutate(inv):
        for mutator in mutators:
            mutator(inv)

    return mutate


BAD_INPUTS = [
    pytest.param(delete("groups", "storage"), "group(s) storage missing or empty", id="missing-group"),
    pytest.param(set_value("groups", "network", []), "group(s) network missing or empty", id="empty-group"),
    pytest.param(
        set_value("vars", "management_network", "10.0.0.0/33"), "management_network is '10.0.0.0/33'", id="bad-cidr"
    ),
    pytest.param(
        set_value("vars", "tunnel_network", "10.0.1.7/24"), "tunnel_network is '10.0.1.7/24'", id="cidr-host-bits"
    ),
    pytest.param(delete("vars", "tunnel_network"), "tunnel_network is not set", id="missing-network"),
    pytest.param(set_value("vars", "public_network", "dmz"), "public_network is 'dmz'", id="bad-public-network"),
    pytest.param(
        set_host("cmp2", "management_address", None), "Host cmp2: management_address is not set", id="no-mgmt"
    ),
    pytest.param(
        set_host("ctl1", "management_address", "10.0.0.300"),
        "Host ctl1: management_address '10.0.0.300' is not a valid IP address",
        id="invalid-mgmt-ip",
    ),
    pytest.param(
        set_host("net1", "management_address", "10.0.9.12"),
        "Host net1: management_address 10.0.9.12 is outside management_network 10.0.0.0/24",
        id="mgmt-outside-network",
    ),
    pytest.param(
        set_host("cmp2", "management_address", "10.0.0.21"),
        "Host cmp1: management_address 10.0.0.21 is also used by host(s) cmp2",
        id="duplicate-mgmt",
    ),
    pytest.param(set_host("cmp1", "tunnel_address", None), "Host cmp1: tunnel_address is not set", id="no-tunnel"),
    pytest.param(
        set_host("net1", "tunnel_address", "fe80::zz"),
        "Host net1: tunnel_address 'fe80::zz' is not a valid IP address",
        id="invalid-tunnel-ip",
    ),
    pytest.param(
        set_host("cmp2", "tunnel_address", "10.0.0.22"),
        "Host cmp2: tunnel_address 10.0.0.22 is outside tunnel_network 10.0.1.0/24",
        id="tunnel-outside-network",
    ),
    pytest.param(
        set_host("cmp2", "tunnel_address", "10.0.1.12"),
        "Host net1: tunnel_address 10.0.1.12 is also used by host(s) cmp2",
        id="duplicate-tunnel",
    ),
    pytest.param(
        set_value("vars", "internal_vip_address", "10.0.5.250"),
        "internal_vip_address 10.0.5.250 is outside management_network 10.0.0.0/24",
        id="internal-vip-outside",
    ),
    pytest.param(
        set_value("vars", "internal_vip_address", "10.0.0.12"),
        "internal_vip_address 10.0.0.12 is the management_address of host(s) net1",
        id="vip-is-host-address",
    ),
    pytest.param(delete("vars", "public_vip_address"), "public_vip_address is not set", id="missing-public-vip"),
    pytest.param(
        set_value("vars", "public_network", "192.0.2.0/24"),
        "public_vip_address 10.0.0.251 is outside public_network 192.0.2.0/24",
        id="public-vip-outside-public-network",
    ),
    pytest.param(
        set_value("vars", "public_vip_address", "10.0.0.250"),
        "public_vip_address 10.0.0.250 equals internal_vip_address",
        id="vips-equal",
    ),
    pytest.param(delete("secrets", REQUIRED[0]), f"Secrets missing: {REQUIRED[0]}.", id="missing-secret"),
    pytest.param(
        set_value("secrets", REQUIRED[-1], "tooshort-" + "x" * (SECRET_MIN_LENGTH - 10)),
        f"characters: {REQUIRED[-1]}.",
        id="short-secret",
    ),
    pytest.param(
        set_value("secrets", REQUIRED[0], None), f"Secrets shorter than {SECRET_MIN_LENGTH}", id="null-secret"
    ),
    pytest.param(
        set_value("secrets", SSH_KEY_SECRET, secrets.token_urlsafe(48)),
        f"{SSH_KEY_SECRET} in",
        id="ssh-key-pair-as-text",
    ),
    pytest.param(
        set_value("secrets", SSH_KEY_SECRET, {"public_key": "ssh-ed25519 AAAA" + secrets.token_urlsafe(32)}),
        "is not an SSH key pair",
        id="ssh-key-pair-without-private-key",
    ),
    pytest.param(set_value("vars", "openstack_release", "2026.3"), "openstack_release is '2026.3'", id="bad-release"),
    pytest.param(
        set_value("vars", "openstack_release", "flamingo"), "openstack_release is 'flamingo'", id="named-release"
    ),
    pytest.param(delete("vars", "openstack_release"), "openstack_release is not set", id="missing-release"),
    pytest.param(
        set_value("vars", "openstack_release", "2031.1"),
        "openstack_release '2031.1' has no pinned constraints (releases/2031.1.txt)",
        id="unknown-release",
    ),
    pytest.param(
        set_value("groups", "glance_api", []),
        "Inventory group 'glance_api' (used by glance api) is missing or empty",
        id="empty-service-group",
    ),
    pytest.param(
        delete("secrets", "glance_keystone_password"),
        "Secrets missing: glance_keystone_password.",
        id="missing-service-password",
    ),
    pytest.param(
        combine(
            lambda inv: inv["hosts"].update(ctl2={"management_address": "10.0.0.13", **UNREACHABLE_HOST}),
            set_value("groups", "controller", ["ctl1", "ctl2"]),
        ),
        "The controller group has 2 hosts",
        id="even-controllers",
    ),
    pytest.param(
        set_host("net1", "ovn_bridge_mappings", {"physnet1": "br-ex"}),
        "Host net1: ovn_bridge_mappings maps physnet1 to a bridge that ovn_bridge_interfaces gives no interface",
        id="bridge-mapping-without-interface",
    ),
    pytest.param(
        combine(
            set_host("net1", "ovn_bridge_mappings", {"physnet1": "br-int"}),
            set_host("net1", "ovn_bridge_interfaces", {"br-int": "eth2"}),
        ),
        "br-int is OVN's own bridge and cannot carry a provider network",
        id="bridge-mapping-to-br-int",
    ),
    pytest.param(
        combine(
            set_host("ctl1", "ovn_bridge_mappings", {"physnet1": "br-ex"}),
            set_host("ctl1", "ovn_bridge_interfaces", {"br-ex": "eth2"}),
        ),
        "Host ctl1: ovn_bridge_mappings is set, but only compute and network hosts run OVN",
        id="bridge-mapping-off-chassis",
    ),
    pytest.param(
        set_value("vars", "neutron_provider_networks", [PUBLIC_NETWORK]),
        "provider network 'public' uses a physical network that no network host maps to a bridge",
        id="provider-network-unmapped",
    ),
    pytest.param(
        combine(
            mapped_provider,
            set_value("vars", "neutron_self_service_networks", [dict(DEMO_NETWORK, project="nobody")]),
            set_value("vars", "neutron_projects", ["demo"]),
        ),
        "self-service network 'demo-net' is in a project that is neither admin nor in neutron_projects",
        id="self-service-network-unknown-project",
    ),
    pytest.param(
        combine(
            mapped_provider,
            set_value("vars", "neutron_self_service_networks", [dict(DEMO_NETWORK, external_network="internet")]),
            set_value("vars", "neutron_projects", ["demo"]),
        ),
        "the router of self-service network 'demo-net' needs an external network of neutron_provider_networks",
        id="router-without-external-network",
    ),
    pytest.param(
        combine(
            mapped_provider,
            set_value("vars", "neutron_provider_networks", [dict(PUBLIC_NETWORK, external=False, is_default=True)]),
        ),
        "provider network 'public' is_default but not external: only an external network can be the default",
        id="default-network-not-external",
    ),
    pytest.param(
        combine(
            mapped_provider,
            set_value(
                "vars",
                "neutron_provider_networks",
                [dict(PUBLIC_NETWORK, is_default=True), dict(PUBLIC_NETWORK, name="public2", is_default=True)],
            ),
        ),
        "more than one provider network is_default: public, public2",
        id="two-default-networks",
    ),
    pytest.param(
        combine(
            mapped_provider,
            set_value(
                "vars",
                "neutron_subnet_pools",
                [
                    {"name": "a", "prefixes": ["172.30.0.0/16"], "is_default": True},
                    {"name": "b", "prefixes": ["172.31.0.0/16"], "is_default": True},
                ],
            ),
        ),
        "more than one subnet pool is_default: a, b",
        id="two-default-subnet-pools",
    ),
    pytest.param(
        combine(mapped_provider, set_value("vars", "neutron_subnet_pools", [{"name": "a", "is_default": True}])),
        "subnet pool 'a' needs its prefixes (a list of CIDRs)",
        id="subnet-pool-without-prefixes",
    ),
    pytest.param(
        set_value("vars", "ceph_mode", "rbd"), "ceph_mode is 'rbd'; use deploy, external or none", id="ceph-bad-mode"
    ),
    pytest.param(
        combine(ceph_cluster, set_value("groups", "ceph_mon", ["ctl1", "cmp1"])),
        "ceph_mode deploy needs an odd number of hosts (1, 3 or 5) in the ceph_mon group; it has 2",
        id="ceph-even-monitors",
    ),
    pytest.param(
        combine(ceph_cluster, set_host("ctl1", "ceph_osds", [])),
        "ceph_mode deploy needs at least one entry in ceph_osds on the storage hosts",
        id="ceph-no-osds",
    ),
    pytest.param(
        combine(ceph_cluster, set_host("ctl1", "ceph_osds", [{"size": "10G"}, {"path": "sdb"}])),
        "every entry of ceph_osds needs an absolute path (a disk, or a file with a size)",
        id="ceph-osd-without-path",
    ),
    pytest.param(
        combine(ceph_cluster, set_host("ctl1", "ceph_osds", "/dev/sdb")),
        "ceph_osds must be a list of {path, size} on host(s) ctl1",
        id="ceph-osds-not-a-list",
    ),
    pytest.param(
        set_value("vars", "ceph_mode", "external"),
        "ceph_mode external needs ceph_external_mon_hosts",
        id="ceph-external-without-monitors",
    ),
    pytest.param(
        combine(ceph_cluster, delete("groups", "ceph_mon")),
        (
            "Inventory group 'ceph_mon' (used by ceph mon, ceph mgr) is missing or empty",
            "`ceph_mon: {children: {storage: }}`",
        ),
        id="ceph-deploy-without-monitor-group",
    ),
    pytest.param(
        combine(ceph_cluster, storage_host("cmp1")),
        "ceph_mode deploy runs OSDs on every storage host (the pools keep their replicas on separate hosts), "
        "but host(s) cmp1 have no ceph_osds",
        id="ceph-storage-host-without-osds",
    ),
    pytest.param(
        combine(ceph_cluster, set_value("groups", "cinder_backup", [])),
        (
            "Inventory group 'cinder_backup' (used by cinder backup) is missing or empty",
            "`cinder_backup: {children: {storage: }}`",
        ),
        id="ceph-cinder-backup-group-empty",
    ),
    pytest.param(
        combine(
            set_value("vars", "ceph_mode", "external"),
            set_value("vars", "ceph_external_mon_hosts", ["192.0.2.61"]),
            delete("groups", "cinder_backup"),
        ),
        "Inventory group 'cinder_backup' (used by cinder backup) is missing or empty",
        id="ceph-external-cinder-backup-group-missing",
    ),
    pytest.param(
        combine(ceph_cluster, set_value("vars", "cinder_backup_rbd_pool", "cinder-backups")),
        "cinder_backup_rbd_pool is 'cinder-backups', which is not in ceph_pools (images, volumes, vms, backups), "
        "so ceph_mode deploy never creates it",
        id="cinder-backup-pool-not-a-ceph-pool",
    ),
    pytest.param(
        combine(ceph_cluster, set_value("vars", "ceph_pools", ["images", "vms", "backups"])),
        "cinder_rbd_pool is 'volumes', which is not in ceph_pools (images, vms, backups)",
        id="cinder-volume-pool-left-out-of-ceph-pools",
    ),
    pytest.param(
        combine(ceph_cluster, set_value("vars", "glance_rbd_pool", "glance-images")),
        "glance_rbd_pool is 'glance-images', which is not in ceph_pools (images, volumes, vms, backups)",
        id="glance-pool-not-a-ceph-pool",
    ),
    pytest.param(
        set_value("vars", "cinder_volume_types", {"name": "fast"}),
        'cinder_volume_types is {"name": "fast"}, not a list',
        id="volume-types-not-a-list",
    ),
    pytest.param(
        set_value("vars", "cinder_volume_types", [{"extra_specs": {"multiattach": "<is> True"}}]),
        "volume type #1 needs a name",
        id="volume-type-without-a-name",
    ),
    pytest.param(
        set_value("vars", "cinder_volume_types", [{"name": "shared", "extra_specs": "multiattach", "public": True}]),
        "volume type shared has unknown key(s) public (allowed: name, extra_specs, description, is_public); "
        'volume type shared has extra_specs "multiattach", not a mapping',
        id="volume-type-bad-keys-and-specs",
    ),
    pytest.param(
        set_value("vars", "cinder_volume_types", [{"name": "fast"}, {"name": "fast", "is_public": "yes"}]),
        'volume type fast has is_public "yes"; use true or false; volume type fast appears more than once',
        id="volume-type-twice",
    ),
    pytest.param(set_host("ctl1", "swift_devices", None), "Host ctl1: swift_devices is not set", id="swift-no-devices"),
    pytest.param(swift_devices("ctl1"), "Host ctl1: swift_devices is empty", id="swift-empty-devices"),
    pytest.param(
        combine(storage_host("cmp2"), set_host("cmp2", "swift_devices", None)),
        "Host cmp2: swift_devices is not set",
        id="swift-second-storage-host-without-devices",
    ),
    pytest.param(
        set_host("ctl1", "swift_devices", "sdb"),
        'Host ctl1: swift_devices must be a list of devices, not "sdb"',
        id="swift-devices-not-a-list",
    ),
    pytest.param(
        swift_devices("ctl1", "sdb"),
        'Host ctl1: swift_devices entry "sdb" is not a mapping such as {name: sdb}',
        id="swift-device-not-a-mapping",
    ),
    pytest.param(
        swift_devices("ctl1", {"name": "d1", "typ": "loop", "size": "2G"}),
        "Host ctl1: swift device d1 has unknown key(s) typ (allowed: name, type, size, weight, zone, region)",
        id="swift-device-unknown-key",
    ),
    pytest.param(
        swift_devices("ctl1", {"type": "disk"}),
        "Host ctl1: swift device #1 needs a name, a string of letters, digits",
        id="swift-device-without-name",
    ),
    pytest.param(
        swift_devices("ctl1", dict(SWIFT_LOOP), {"name": "../sdb"}),
        "Host ctl1: swift device ../sdb needs a name, a string of letters, digits",
        id="swift-device-path-as-name",
    ),
    pytest.param(
        swift_devices("ctl1", {"name": "d1", "type": "lvm"}),
        "Host ctl1: swift device d1 has type 'lvm'; use disk, loop, directory",
        id="swift-device-bad-type",
    ),
    pytest.param(
        swift_devices("ctl1", {"name": "d1", "type": "loop"}),
        "Host ctl1: swift device d1 is a loop device and needs a size of at least 300M (truncate syntax such as 2G), "
        "not none",
        id="swift-loop-device-without-size",
    ),
    pytest.param(
        swift_devices("ctl1", {"name": "d1", "type": "loop", "size": "100M"}),
        'swift device d1 is a loop device and needs a size of at least 300M (truncate syntax such as 2G), not "100M"',
        id="swift-loop-device-too-small",
    ),
    pytest.param(
        swift_devices("ctl1", {"name": "d1", "type": "loop", "size": "2 GB"}),
        'swift device d1 is a loop device and needs a size of at least 300M (truncate syntax such as 2G), not "2 GB"',
        id="swift-loop-device-bad-size",
    ),
    pytest.param(
        combine(
            swift_devices("ctl1", {"name": "d1", "type": "directory"}), set_host("ctl1", "swift_mount_check", True)
        ),
        "Host ctl1: swift device d1 is a directory, which needs swift_mount_check false (it is true)",
        id="swift-directory-device-with-mount-check",
    ),
    pytest.param(
        swift_devices("ctl1", {"name": "sdb", "weight": -1}),
        "Host ctl1: swift device sdb has weight -1; use a number, 0 or more (0 drains it)",
        id="swift-device-negative-weight",
    ),
    pytest.param(
        swift_devices("ctl1", {"name": "sdb", "zone": "a"}),
        'Host ctl1: swift device sdb has zone "a"; use a whole number',
        id="swift-device-bad-zone",
    ),
    pytest.param(
        swift_devices("ctl1", dict(SWIFT_LOOP), dict(SWIFT_LOOP, size="4G")),
        "Host ctl1: swift device name d1 appears more than once",
        id="swift-device-name-twice",
    ),
    pytest.param(
        combine(
            lambda inv: inv["hosts"].update(Ctl_1=inv["hosts"].pop("ctl1")),
            set_value("groups", "controller", ["Ctl_1"]),
            set_value("groups", "storage", ["Ctl_1"]),
        ),
        "Host name 'Ctl_1' is not a valid hostname",
        id="bad-hostname",
    ),
    pytest.param(
        set_value("vars", "haproxy_check_timeout", "10 s"), "haproxy_check_timeout is '10 s'", id="haproxy-time-space"
    ),
    pytest.param(
        combine(set_value("vars", "haproxy_check_interval", 0), set_value("vars", "haproxy_tcp_timeout", "long")),
        "haproxy_tcp_timeout is 'long', haproxy_check_interval is '0'",
        id="haproxy-times",
    ),
    pytest.param(
        set_value("vars", "mariadb_check_timeout", 10),
        "mariadb_check_timeout is 10 and haproxy_check_timeout is 10s",
        id="mariadb-check-as-long-as-haproxy-check",
    ),
    pytest.param(
        combine(set_value("vars", "mariadb_check_timeout", 6), set_value("vars", "haproxy_check_timeout", "5000")),
        "mariadb_check_timeout is 6 and haproxy_check_timeout is 5000",
        id="mariadb-check-longer-than-haproxy-check-in-ms",
    ),
    pytest.param(
        set_value("vars", "mariadb_check_timeout", "8s"),
        "mariadb_check_timeout is 8s and",
        id="mariadb-check-not-a-number",
    ),
]


@pytest.mark.parametrize(("mutate", "expected"), BAD_INPUTS)
def test_bad_inventory_stops_before_any_host(tmp_path, mutate, expected):
    inv = good_inventory()
    mutate(inv)
    proc, report = run_prechecks(tmp_path, inv)

    assert proc.returncode != 0
    messages = failure_messages(report)
    for fragment in [expected] if isinstance(expected, str) else expected:
        assert fragment in messages, f"expected {fragment!r} in:\n{messages}"
    assert "inventory" in messages  # every message points at the file to fix
    assert_no_host_touched(report)
    # Secret values never reach the output, even when they are the problem.
    leaked = [name for name, value in inv["secrets"].items() if value and str(value) in proc.stdout + proc.stderr]
    assert not leaked, f"secret values printed: {leaked}"


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda inv: None, id="as-is"),
        pytest.param(
            combine(
                set_value("vars", "public_network", "192.0.2.0/24"),
                set_value("vars", "public_vip_address", "192.0.2.10"),
            ),
            id="public-network",
        ),
        pytest.param(set_value("vars", "openstack_release", 2026.2), id="unquoted-release"),
        pytest.param(
            combine(
                set_host("net1", "ovn_bridge_mappings", {"physnet1": "br-ex"}),
                set_host("net1", "ovn_bridge_interfaces", {"br-ex": "eth2"}),
            ),
            id="provider-bridge",
        ),
        pytest.param(
            combine(
                mapped_provider,
                set_value("vars", "neutron_projects", ["demo"]),
                set_value("vars", "neutron_self_service_networks", [DEMO_NETWORK]),
            ),
            id="provider-and-self-service-networks",
        ),
        pytest.param(ceph_cluster, id="ceph-cluster"),
        pytest.param(
            combine(
                ceph_cluster,
                storage_host("cmp1"),
                set_host("cmp1", "ceph_osds", [{"path": "/srv/osd0.img", "size": "10G"}]),
                set_value("vars", "ceph_pools", ["images", "ssd", "vms", "backups"]),
                set_value("vars", "cinder_rbd_pool", "ssd"),
            ),
            id="ceph-two-storage-hosts-and-own-volume-pool",
        ),
        pytest.param(
            set_value("vars", "cinder_volume_types", [
                {"name": "multiattach", "extra_specs": {"multiattach": "<is> True"}},
                {"name": "private", "description": "for one project", "is_public": False},
            ]),
            id="own-volume-types",
        ),
        # Without Ceph there is no cinder, so its cinder_backup group may be missing.
        pytest.param(delete("groups", "cinder_backup"), id="no-ceph-no-cinder-backup-group"),
        pytest.param(
            swift_devices(
                "ctl1",
                {"name": "sdb"},
                {"name": "sdc", "type": "disk", "weight": 4000, "zone": 2, "region": 1},
                {"name": "d1", "type": "loop", "size": "300M"},
                {"name": "d2", "type": "loop", "size": "4GiB", "weight": 0.5},
                {"name": "d3", "type": "loop", "size": "1T", "weight": 0, "zone": 0},
            ),
            id="swift-disks-and-loop-devices",
        ),
        pytest.param(swift_devices("ctl1", {"name": "d1", "type": "directory"}), id="swift-directory-device"),
        pytest.param(
            combine(
                set_value("vars", "haproxy_check_timeout", "1m"),
                set_value("vars", "haproxy_tcp_timeout", 90),
                set_value("vars", "mariadb_check_timeout", 30),
            ),
            id="haproxy-times",
        ),
        pytest.param(
            combine(
                swift_devices("ctl1", {"name": "d1", "type": "directory"}, {"name": "sdb"}),
                set_host("ctl1", "swift_mount_check", False),
            ),
            id="swift-directory-device-without-mount-check",
        ),
        pytest.param(
            combine(
                set_value("vars", "ceph_mode", "external"),
                set_value("vars", "ceph_external_mon_hosts", ["192.0.2.61"]),
            ),
            id="ceph-external",
        ),
    ],
)
def test_good_inventory_passes_every_inventory_check(tmp_path, mutate):
    inv = good_inventory()
    mutate(inv)
    proc, report = run_prechecks(tmp_path, inv, "--tags", "inventory")

    assert proc.returncode == 0, failure_messages(report) or proc.stderr
    first_play = next(p for p in report["plays"] if p["play"]["name"] == "Check the inventory and variables")
    tasks = [task["task"]["name"] for task in first_play["tasks"]]
    assert len(tasks) >= 7
    for task in first_play["tasks"]:
        assert task["hosts"], f"{task['task']['name']} ran on no host"
        for host, result in task["hosts"].items():
            assert not result.get("failed") and not result.get("skipped"), (task["task"]["name"], host, result)
    per_host = {
        host for _, task, host, _ in task_results(report) if task == "Check each host's management and tunnel addresses"
    }
    assert per_host == set(inv["hosts"])
    assert_no_host_touched(report)


@pytest.mark.skipif(shutil.which("ssh") is None, reason="needs the ssh client")
def test_host_play_contact_is_detected(tmp_path):
    """The guard above can fail: with a good inventory the host play does try 127.0.0.1:9."""
    proc, report = run_prechecks(tmp_path, good_inventory())

    assert proc.returncode != 0
    assert sum(stats["unreachable"] for stats in report["stats"].values()) == 4
    with pytest.raises(AssertionError):
        assert_no_host_touched(report)


def test_empty_inventory_is_refused(tmp_path):
    inv = good_inventory()
    inv["hosts"] = {}
    inv["groups"] = {group: [] for group in inv["groups"]}
    proc, report = run_prechecks(tmp_path, inv)

    assert proc.returncode != 0
    assert "The inventory has no hosts" in failure_messages(report)


def local_host_inventory():
    """The good inventory with every host on this machine (connection local), so the host play really runs."""
    inv = good_inventory()
    for host_vars in inv["hosts"].values():
        for key in UNREACHABLE_HOST:
            del host_vars[key]
        host_vars.update(ansible_connection="local", ansible_python_interpreter=sys.executable)
    return inv


def this_machines_os():
    """The OS of this machine as the prechecks' supported list names it, so the OS check lets it through."""
    release = dict(
        line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line
    )  # fmt: skip
    name = release["NAME"].strip('"').split()[0]
    major = release.get("VERSION_ID", "").strip('"').split(".")[0]
    return json.dumps({"prechecks_supported_os": [{"distribution": name, "major": major}]})


def missing_on_this_machine():
    """A capability the bounding set of this test process lacks, or None."""
    mask = bounding_set(Path("/proc/self/status").read_text())
    return next((name for name, bit in CAPABILITY_BITS.items() if not mask >> bit & 1), None)


@pytest.mark.parametrize("with_ceph", [True, False], ids=["ceph", "no-ceph-group"])
def test_host_checks_pass_on_a_host_that_grants_the_capabilities(tmp_path, with_ceph):
    needed = {cap for svc in load_registry(REPO / "services").values()
              for comp in svc["components"].values() for cap in comp.get("capabilities", [])}  # fmt: skip
    if missing_on_this_machine() in needed:
        pytest.skip(f"this machine's bounding set lacks CAP_{missing_on_this_machine()}, which the registry needs")
    inv = local_host_inventory()
    if with_ceph:
        ceph_cluster(inv)
    proc, report = run_prechecks(tmp_path, inv, "-e", this_machines_os())

    assert proc.returncode == 0, failure_messages(report) or proc.stderr
    ran = {(task, host) for _, task, host, result in task_results(report) if not result.get("skipped")}
    # cmp1 runs nova-compute, ctl1 cinder-volume (only with Ceph); ctl1 is the first monitor.
    capability_check = "Check that the host lets the services' privsep daemons keep their capabilities"
    assert (capability_check, "cmp1") in ran
    assert ((capability_check, "ctl1") in ran) is with_ceph
    assert (("Check that systemd accepts the RBD trash purge calendar", "ctl1") in ran) is with_ceph


def test_host_checks_refuse_a_host_without_a_capability(tmp_path):
    missing = missing_on_this_machine()
    if missing is None:
        pytest.skip("this machine's bounding set has every capability, so none can be missing")
    services = tmp_path / "services"
    shutil.copytree(REPO / "services", services)
    nova = yaml.safe_load((services / "nova.yml").read_text())
    nova["components"]["compute"]["capabilities"] = ["SYS_ADMIN", missing]
    (services / "nova.yml").write_text("---\n" + yaml.safe_dump(nova, sort_keys=False))
    proc, report = run_prechecks(
        tmp_path, local_host_inventory(), "-e", this_machines_os(), STACKWRIGHT_SERVICES=str(services)
    )  # fmt: skip

    assert proc.returncode != 0
    messages = failure_messages(report)
    assert "Host cmp1 runs neutron-ovn-agent, nova-compute, whose privsep daemons keep" in messages
    assert f"but its capability bounding set lacks CAP_{missing}. Run them" in messages


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_host_checks_refuse_a_calendar_systemd_rejects(tmp_path):
    inv = local_host_inventory()
    ceph_cluster(inv)
    inv["vars"]["ceph_rbd_trash_purge_calendar"] = "every hour"
    proc, report = run_prechecks(tmp_path, inv, "-e", this_machines_os())

    assert proc.returncode != 0
    messages = failure_messages(report)
    assert "ceph_rbd_trash_purge_calendar is 'every hour', which systemd on ctl1 does not accept" in messages


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_host_checks_read_the_calendar_on_the_first_monitor_under_a_limit(tmp_path):
    inv = local_host_inventory()
    ceph_cluster(inv)
    inv["vars"]["ceph_rbd_trash_purge_calendar"] = "every hour"
    proc, report = run_prechecks(tmp_path, inv, "-e", this_machines_os(), "--limit", "cmp1")

    assert proc.returncode != 0
    assert "which systemd on ctl1 does not accept" in failure_messages(report)


def test_secrets_can_come_from_the_file_stackwright_secrets_file_names(tmp_path):
    """AWX keeps the secrets in a credential that writes them to a file of its own (docs/awx.md)."""
    inv = good_inventory()
    elsewhere = tmp_path / "credential.yml"
    secrets_file_holds = dict(inv["secrets"])
    elsewhere.write_text("---\n" + yaml.safe_dump(secrets_file_holds))
    inv["secrets"] = {}
    for run_dir in ("without", "with", "short"):
        (tmp_path / run_dir).mkdir()

    proc, report = run_prechecks(tmp_path / "without", inv, "--tags", "inventory")
    assert proc.returncode != 0
    assert "/without/inventory/secrets.yml is incomplete. Secrets missing" in failure_messages(report)

    proc, report = run_prechecks(tmp_path / "with", inv, "--tags", "inventory", STACKWRIGHT_SECRETS_FILE=str(elsewhere))
    assert proc.returncode == 0, failure_messages(report) or proc.stderr

    del secrets_file_holds[REQUIRED[0]]
    elsewhere.write_text("---\n" + yaml.safe_dump(secrets_file_holds))
    _proc, report = run_prechecks(
        tmp_path / "short", inv, "--tags", "inventory", STACKWRIGHT_SECRETS_FILE=str(elsewhere)
    )
    assert f"{elsewhere} is incomplete. Secrets missing: {REQUIRED[0]}." in failure_messages(report)
    assert "Run `STACKWRIGHT_SECRETS_FILE=<a copy of that file> scripts/generate-secrets" in failure_messages(report)

    missing = tmp_path / "missing.yml"
    proc = run_playbook(tmp_path, tmp_path / "with" / "inventory", PLAYBOOK.name, STACKWRIGHT_SECRETS_FILE=str(missing))
    assert proc.returncode != 0
    assert f"STACKWRIGHT_SECRETS_FILE names {missing}, which is not a file" in proc.stdout + proc.stderr

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The registry (services/*.yml) stays valid; a malformed entry fails with a message naming the file and field."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from ansible_collections.stackwright.cloud.plugins.plugin_utils.registry import (
    SECRET_MIN_LENGTH,
    RegistryError,
    components_for_groups,
    default_registry_dir,
    load_registry,
    required_secrets,
    validate_service,
)

REPO = Path(__file__).resolve().parent.parent
SERVICES = REPO / "services"


def test_default_registry_dir_is_the_project_services_dir(monkeypatch):
    monkeypatch.delenv("STACKWRIGHT_SERVICES", raising=False)
    assert default_registry_dir().resolve() == SERVICES


def test_real_registry_loads_and_validates():
    services = load_registry(SERVICES)
    assert set(services) == {p.stem for p in SERVICES.glob("*.yml")}
    for name, svc in services.items():
        assert svc["name"] == name
        validate_service(str(SERVICES / f"{name}.yml"), svc)


def test_real_registry_files_start_with_document_marker():
    # yamllint --strict wants the marker; keep the registry consistent with the rest of the tree.
    for path in SERVICES.glob("*.yml"):
        assert path.read_text().startswith("---\n"), path


def test_required_secrets_of_real_registry():
    names = required_secrets(load_registry(SERVICES))
    assert names == sorted(set(names))
    assert {"haproxy_stats_password", "mariadb_backup_password", "rabbitmq_erlang_cookie"} <= set(names)
    assert SECRET_MIN_LENGTH >= 32


def test_required_secrets_derived_from_database_messaging_keystone():
    svc = {"database": ["glance"], "messaging": True, "keystone_user": "glance", "secrets": ["glance_extra"]}
    assert required_secrets({"glance": svc, "memcached": {"components": {}}}) == [
        "glance_database_password",
        "glance_extra",
        "glance_keystone_password",
        "glance_rabbitmq_password",
    ]


def test_components_for_groups():
    services = load_registry(SERVICES)
    compute = components_for_groups(services, ["compute"])
    # group "all" components run everywhere, controller ones do not run on a compute node.
    expected = [
        ("chrony", "client"),
        ("libvirt", "daemon"),
        ("neutron", "ovn_agent"),
        ("nova", "compute"),
        ("openvswitch", "compute"),
        ("ovn", "chassis"),
    ]
    assert [(c["service"], c["component"]) for c in compute] == expected
    controller = {(c["service"], c["component"]) for c in components_for_groups(services, ["controller"])}
    assert {("mariadb", "server"), ("chrony", "server"), ("chrony", "client")} <= controller
    # cinder-backup has a group of its own (the inventories make it the storage hosts), not the controllers'.
    assert {("cinder", "api"), ("cinder", "scheduler"), ("cinder", "volume")} <= controller
    assert ("cinder", "backup") not in controller
    backup = components_for_groups(services, ["storage", "cinder_backup"])
    assert [c["component"] for c in backup if c["service"] == "cinder"] == ["backup"]


def lab_inventory(name):
    """(hostvars, {host: group names}) of inventory/<name> as ansible-inventory sees it, with the vars plugin."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.pop("STACKWRIGHT_SERVICES", None)
    env["ANSIBLE_CONFIG"] = str(REPO / "ansible.cfg")
    executable = Path(sys.executable).parent / "ansible-inventory"
    command = [str(executable) if executable.exists() else "ansible-inventory", "-i", str(REPO / "inventory" / name)]
    proc = subprocess.run([*command, "--list"], cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # ansible-inventory marks strings from vars plugins as {"__ansible_unsafe": value}.
    data = json.loads(proc.stdout, object_hook=lambda obj: obj.get("__ansible_unsafe", obj))
    hostvars = data.pop("_meta")["hostvars"]

    def members(group):
        entry = data.get(group, {})
        return set(entry.get("hosts", [])).union(*(members(child) for child in entry.get("children", [])))

    group_names = {host: sorted(g for g in data if host in members(g)) for host in hostvars}
    return hostvars, group_names


def play_hosts(playbook, play_name, group_names):
    """The hosts of a play whose `hosts` is a union of groups (a:b:c), as a set."""
    play = next(p for p in yaml.safe_load((REPO / "playbooks" / playbook).read_text()) if p["name"] == play_name)
    pattern = play["hosts"].split(":")
    assert all(g.isidentifier() for g in pattern), f"{playbook}: only unions of groups are handled here"
    return {host for host, groups in group_names.items() if set(pattern) & set(groups)}


@pytest.mark.parametrize(
    ("inventory", "expected"),
    [
        pytest.param("lab-aio", {"sw-aio1": ["api", "backup", "scheduler", "volume"]}, id="aio"),
        pytest.param(
            "lab-multinode",
            {
                "sw-ctl1": ["api", "scheduler", "volume"],
                "sw-ctl2": ["api", "scheduler", "volume"],
                "sw-ctl3": ["api", "scheduler", "volume"],
                "sw-sto1": ["backup"],
            },
            id="multinode",
        ),
    ],
)
def test_lab_inventories_place_cinder_backup_on_the_storage_hosts(inventory, expected):
    hostvars, group_names = lab_inventory(inventory)
    registry = load_registry(SERVICES)
    # The vars plugin hands every host the registry as loaded here.
    for host in hostvars:
        assert hostvars[host]["stackwright_services"]["cinder"] == registry["cinder"], host
    placed = {}
    for host, groups in group_names.items():
        components = [c["component"] for c in components_for_groups(registry, groups) if c["service"] == "cinder"]
        if components:
            placed[host] = sorted(components)
    assert placed == expected
    # playbooks/cinder.yml runs on exactly those hosts, each once; haproxy sends cinder-api traffic to the API hosts.
    assert play_hosts("cinder.yml", "Block storage service", group_names) == set(expected)
    api_hosts = {
        host for host, groups in group_names.items() if registry["cinder"]["components"]["api"]["group"] in groups
    }
    assert api_hosts == {host for host, components in expected.items() if "api" in components}


@pytest.fixture
def registry(tmp_path):
    """A writable copy of the real registry; edit(name, fn) rewrites services/<name>.yml through fn."""
    directory = tmp_path / "services"
    shutil.copytree(SERVICES, directory)

    def edit(name, change):
        path = directory / f"{name}.yml"
        data = yaml.safe_load(path.read_text())
        change(data)
        path.write_text("---\n" + yaml.safe_dump(data, sort_keys=False))
        return path

    edit.directory = directory
    return edit


def _error(registry):
    with pytest.raises(RegistryError) as excinfo:
        load_registry(registry.directory)
    return str(excinfo.value)


def _server(data):
    return data["components"]["server"]


def test_copy_of_real_registry_is_valid(registry):
    assert load_registry(registry.directory)


def test_missing_field(registry):
    path = registry("memcached", lambda d: d.pop("description"))
    msg = _error(registry)
    assert str(path) in msg
    assert "missing required field 'description'" in msg


def test_missing_component_field(registry):
    path = registry("memcached", lambda d: _server(d).pop("unit"))
    msg = _error(registry)
    assert f"{path}: component 'server': missing required field 'unit'" in msg


def test_unknown_field(registry):
    path = registry("memcached", lambda d: d.update(colour="blue"))
    msg = _error(registry)
    assert str(path) in msg
    assert "unknown field 'colour'" in msg


def test_unknown_component_field(registry):
    path = registry("memcached", lambda d: _server(d).update(prot=11211))
    msg = _error(registry)
    assert f"{path}: component 'server': unknown field 'prot'" in msg


def test_wrong_field_type(registry):
    path = registry("memcached", lambda d: d.update(messaging="yes"))
    msg = _error(registry)
    assert f"{path}: field 'messaging' must be bool, got str" in msg


def test_invalid_group_name(registry):
    path = registry("memcached", lambda d: _server(d).update(group="Dash-board"))
    msg = _error(registry)
    assert f"{path}: component 'server': group 'Dash-board' is not a valid inventory group name" in msg


def test_duplicate_port_across_services(registry):
    registry("memcached", lambda d: _server(d).update(port=3306))
    msg = _error(registry)
    assert "duplicate port 3306" in msg
    assert "mariadb.server" in msg and "memcached.server" in msg


def test_duplicate_extra_port_across_services(registry):
    registry("memcached", lambda d: _server(d).update(extra_ports={"stats": 4567}))
    msg = _error(registry)
    assert "duplicate port 4567" in msg
    assert "mariadb.server.galera_replication" in msg and "memcached.server.stats" in msg


def test_duplicate_haproxy_frontend_port(registry):
    registry("memcached", lambda d: _server(d).update(haproxy={"frontend_port": 3306}))
    msg = _error(registry)
    assert "duplicate frontend port 3306" in msg
    assert "mariadb.server" in msg and "memcached.server" in msg


@pytest.mark.parametrize("port", [0, 65536, -1, 70000])
def test_port_out_of_range(registry, port):
    path = registry("memcached", lambda d: _server(d).update(port=port))
    msg = _error(registry)
    assert f"{path}: component 'server': port must be an integer between 1 and 65535, got {port}" in msg


def test_extra_port_out_of_range(registry):
    path = registry("mariadb", lambda d: _server(d)["extra_ports"].update(galera_ist=99999))
    msg = _error(registry)
    assert f"{path}: component 'server' extra port 'galera_ist': port must be an integer" in msg


def test_haproxy_frontend_port_out_of_range(registry):
    path = registry("mariadb", lambda d: _server(d)["haproxy"].update(frontend_port=0))
    msg = _error(registry)
    assert f"{path}: component 'server' haproxy: port must be an integer between 1 and 65535, got 0" in msg


def test_port_as_bool(registry):
    path = registry("memcached", lambda d: _server(d).update(port=True))
    msg = _error(registry)
    assert f"{path}: component 'server': field 'port' must be int or null, got bool" in msg


def test_extra_port_as_bool(registry):
    path = registry("mariadb", lambda d: _server(d)["extra_ports"].update(galera_ist=True))
    msg = _error(registry)
    assert f"{path}: component 'server' extra port 'galera_ist': port must be an integer" in msg
    assert "got True" in msg


def test_haproxy_frontend_port_as_bool(registry):
    path = registry("mariadb", lambda d: _server(d)["haproxy"].update(frontend_port=True))
    msg = _error(registry)
    assert f"{path}: component 'server' haproxy: field 'frontend_port' must be int, got bool" in msg


def test_port_as_string(registry):
    path = registry("memcached", lambda d: _server(d).update(port="11211"))
    msg = _error(registry)
    assert f"{path}: component 'server': field 'port' must be int or null, got str" in msg


def test_name_must_match_file_name(registry):
    path = registry("memcached", lambda d: d.update(name="memcache"))
    msg = _error(registry)
    assert f"{path}: name 'memcache' must match the file name 'memcached'" in msg


def test_endpoints_need_service_type(registry):
    path = registry("memcached", lambda d: _server(d).update(endpoints={"internal": "/"}))
    msg = _error(registry)
    assert f"{path}: component 'server': endpoints need the service's Keystone 'type'" in msg


def test_endpoints_unknown_interface(registry):
    def change(d):
        d["type"] = "cache"
        _server(d)["endpoints"] = {"private": "/"}

    path = registry("memcached", change)
    msg = _error(registry)
    assert f"{path}: component 'server': unknown endpoint interface 'private'" in msg


def test_endpoints_with_type_are_valid(registry):
    def change(d):
        d["type"] = "cache"
        _server(d)["endpoints"] = {"public": "/", "internal": "/", "admin": None}

    registry("memcached", change)
    assert load_registry(registry.directory)["memcached"]["type"] == "cache"


def test_haproxy_needs_backend_port(registry):
    path = registry("keepalived", lambda d: _server(d).update(haproxy={"frontend_port": 8080}))
    msg = _error(registry)
    assert f"{path}: component 'server': 'haproxy' needs the component's backend 'port'" in msg


def test_haproxy_needs_frontend_port(registry):
    path = registry("memcached", lambda d: _server(d).update(haproxy={"vip": "internal"}))
    msg = _error(registry)
    assert f"{path}: component 'server' haproxy: missing required field 'frontend_port'" in msg


def test_bad_haproxy_vip(registry):
    path = registry("mariadb", lambda d: _server(d)["haproxy"].update(vip="external"))
    msg = _error(registry)
    assert f"{path}: component 'server': haproxy vip must be one of internal, public, both" in msg


def test_bad_haproxy_mode(registry):
    path = registry("mariadb", lambda d: _server(d)["haproxy"].update(mode="udp"))
    msg = _error(registry)
    assert f"{path}: component 'server': haproxy mode must be one of http, tcp" in msg


def test_secret_must_be_prefixed_by_service_name(registry):
    path = registry("haproxy", lambda d: d.update(secrets=["stats_password"]))
    msg = _error(registry)
    assert f"{path}: secret 'stats_password' must be a string starting with 'haproxy_'" in msg


def test_secret_prefixed_by_other_service(registry):
    # mariadb_x in haproxy.yml would let two services fight over one secret.
    path = registry("haproxy", lambda d: d.update(secrets=["mariadb_root_password"]))
    msg = _error(registry)
    assert f"{path}: secret 'mariadb_root_password' must be a string starting with 'haproxy_'" in msg


def test_no_components(registry):
    path = registry("memcached", lambda d: d.update(components={}))
    msg = _error(registry)
    assert f"{path}: 'components' must name at least one component" in msg


def test_invalid_yaml(registry):
    path = registry.directory / "memcached.yml"
    path.write_text("---\nname: memcached\ncomponents: {server: [unclosed\n")
    msg = _error(registry)
    assert f"{path}: not valid YAML" in msg


def test_empty_file(registry):
    path = registry.directory / "memcached.yml"
    path.write_text("---\n")
    msg = _error(registry)
    assert f"{path}: expected a mapping" in msg


def test_missing_directory(tmp_path):
    with pytest.raises(RegistryError, match="does not exist"):
        load_registry(tmp_path / "nowhere")


def test_capabilities_must_be_linux_capabilities(registry):
    path = registry("memcached", lambda d: _server(d).update(capabilities=["SYS_ADMIN", "CAP_NET_ADMIN"]))
    msg = _error(registry)
    assert f"{path}: component 'server': capability 'CAP_NET_ADMIN' is not a Linux capability" in msg


def test_capabilities_must_be_a_list(registry):
    path = registry("memcached", lambda d: _server(d).update(capabilities="SYS_ADMIN"))
    msg = _error(registry)
    assert f"{path}: component 'server': field 'capabilities' must be list, got str" in msg


def test_services_with_privsep_daemons_name_their_capabilities():
    """The prechecks read these; an entry lost here would let a host that cannot run the daemon through."""
    services = load_registry(SERVICES)
    declared = {
        f"{name}.{cname}"
        for name, svc in services.items()
        for cname, comp in svc["components"].items()
        if "SYS_ADMIN" in comp.get("capabilities", [])
    }
    assert declared == {"cinder.volume", "cinder.backup", "nova.compute", "neutron.ovn_agent"}

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filters stackwright.cloud.service_components, stackwright.cloud.required_secrets and
stackwright.cloud.component_addresses."""

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.filter.registry import FilterModule
from ansible_collections.stackwright.cloud.plugins.module_utils.registry import load_registry

FILTERS = FilterModule().filters()
service_components = FILTERS["service_components"]
required_secrets = FILTERS["required_secrets"]
component_addresses = FILTERS["component_addresses"]

SERVICES = {
    "glance": {
        "name": "glance",
        "description": "Image service",
        "type": "image",
        "database": ["glance"],
        "messaging": False,
        "keystone_user": "glance",
        "components": {
            "api": {"group": "controller", "unit": "glance-api", "port": 9292, "haproxy": {"frontend_port": 9292}},
        },
    },
    "nova": {
        "name": "nova",
        "description": "Compute service",
        "database": ["nova", "nova_api"],
        "messaging": True,
        "keystone_user": "nova",
        "secrets": ["nova_metadata_secret"],
        "components": {
            "compute": {"group": "compute", "unit": "nova-compute"},
            "api": {"group": "controller", "unit": "nova-api", "port": 8774},
        },
    },
    "chrony": {
        "name": "chrony",
        "description": "Time",
        "components": {"client": {"group": "all", "unit": "chrony"}},
    },
}


def _names(components):
    return [(c["service"], c["component"]) for c in components]


def test_filters_are_exposed():
    assert set(FILTERS) == {"service_components", "required_secrets", "component_addresses"}


def test_service_components_compute_host():
    assert _names(service_components(SERVICES, ["compute"])) == [("chrony", "client"), ("nova", "compute")]


def test_service_components_aio_host_gets_everything_sorted():
    names = _names(service_components(SERVICES, ["controller", "network", "compute", "storage"]))
    assert names == [("chrony", "client"), ("glance", "api"), ("nova", "api"), ("nova", "compute")]


def test_service_components_keep_registry_fields():
    (api,) = [c for c in service_components(SERVICES, ["controller"]) if c["service"] == "glance"]
    assert api == {
        "group": "controller",
        "unit": "glance-api",
        "port": 9292,
        "haproxy": {"frontend_port": 9292},
        "service": "glance",
        "component": "api",
    }
    # The registry itself is not modified.
    assert "service" not in SERVICES["glance"]["components"]["api"]


def test_service_components_no_groups_gets_all_group_only():
    assert _names(service_components(SERVICES, [])) == [("chrony", "client")]


def test_service_components_accepts_tuple():
    assert _names(service_components(SERVICES, ("compute",))) == [("chrony", "client"), ("nova", "compute")]


def test_service_components_rejects_bare_string():
    with pytest.raises(AnsibleFilterError, match="group_names must be a list"):
        service_components(SERVICES, "compute")


def test_service_components_rejects_non_mapping():
    with pytest.raises(AnsibleFilterError, match="expects the service registry"):
        service_components(["glance"], ["controller"])


def test_required_secrets():
    assert required_secrets(SERVICES) == [
        "glance_database_password",
        "glance_keystone_password",
        "nova_database_password",
        "nova_keystone_password",
        "nova_metadata_secret",
        "nova_rabbitmq_password",
    ]


def test_required_secrets_rejects_non_mapping():
    with pytest.raises(AnsibleFilterError, match="required_secrets: expects the service registry"):
        required_secrets("stackwright_services")


def test_filters_on_project_registry():
    # <repo>/services, from collections/ansible_collections/stackwright/cloud/tests/unit/plugins/filter/
    services = load_registry(Path(__file__).resolve().parents[8] / "services")
    assert "haproxy_stats_password" in required_secrets(services)
    assert ("mariadb", "server") in _names(service_components(services, ["controller"]))
    # The exact lists per group are the registry schema test's; here: controller-only parts stay off compute hosts.
    compute = _names(service_components(services, ["compute"]))
    assert ("chrony", "client") in compute and ("nova", "compute") in compute
    assert not {("mariadb", "server"), ("nova", "api"), ("ovn", "northd")} & set(compute)


GROUPS = {"controller": ["ctl2", "ctl1"], "compute": ["cmp1"], "empty": []}
HOSTVARS = {
    "ctl1": {"management_address": "10.0.0.11"},
    "ctl2": {"management_address": "10.0.0.12"},
    "cmp1": {"management_address": "10.0.0.31"},
}


def test_component_addresses_in_inventory_order_with_the_registry_port():
    assert component_addresses(SERVICES, "glance", "api", GROUPS, HOSTVARS) == ["10.0.0.12:9292", "10.0.0.11:9292"]


def test_component_addresses_of_the_real_memcached_entry():
    registry = load_registry(Path(__file__).resolve().parents[8] / "services")
    port = registry["memcached"]["components"]["server"]["port"]
    groups = {registry["memcached"]["components"]["server"]["group"]: ["ctl1"]}
    assert component_addresses(registry, "memcached", "server", groups, HOSTVARS) == [f"10.0.0.11:{port}"]


@pytest.mark.parametrize(
    ("service", "component", "groups", "hostvars", "message"),
    [
        ("glance", "worker", GROUPS, HOSTVARS, "no component glance.worker"),
        ("keystone", "api", GROUPS, HOSTVARS, "no component keystone.api"),
        ("nova", "compute", GROUPS, HOSTVARS, "nova.compute has no port"),
        ("glance", "api", {"controller": []}, HOSTVARS, "group 'controller', which has no hosts"),
        ("glance", "api", {}, HOSTVARS, "group 'controller', which has no hosts"),
        ("glance", "api", GROUPS, dict(HOSTVARS, ctl1={}), "host ctl1 has no management_address"),
    ],
)
def test_component_addresses_refuses_what_it_cannot_answer(service, component, groups, hostvars, message):
    with pytest.raises(AnsibleFilterError, match=message):
        component_addresses(SERVICES, service, component, groups, hostvars)

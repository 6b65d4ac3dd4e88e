# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The registry filters of stackwright.cloud: service_components, required_secrets, component_addresses,
service_endpoints and deployed_service_types."""

from pathlib import Path

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.filter.registry import FilterModule
from ansible_collections.stackwright.cloud.plugins.plugin_utils.registry import load_registry

FILTERS = FilterModule().filters()
service_components = FILTERS["service_components"]
required_secrets = FILTERS["required_secrets"]
component_addresses = FILTERS["component_addresses"]
service_endpoints = FILTERS["service_endpoints"]
deployed_service_types = FILTERS["deployed_service_types"]

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
    assert set(FILTERS) == {
        "service_components", "required_secrets", "component_addresses", "service_endpoints", "deployed_service_types",
    }  # fmt: skip


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


HOSTS = {"public": "203.0.113.10", "internal": "10.0.0.250", "admin": "10.0.0.250"}
REAL_REGISTRY = Path(__file__).resolve().parents[8] / "services"


def test_service_endpoints_build_each_interface_url():
    services = {
        "keystone": {"name": "keystone", "type": "identity", "components": {
            "api": {"group": "controller", "haproxy": {"frontend_port": 5000},
                    "endpoints": {"public": "", "internal": "", "admin": None}}}},
        "swift": {"name": "swift", "type": "object-store", "components": {
            "storage": {"group": "storage"},
            "proxy": {"group": "controller", "haproxy": {"frontend_port": 8080},
                      "endpoints": {"public": "/v1/AUTH_%(project_id)s", "internal": "/v1/AUTH_%(project_id)s"}}}},
        "chrony": SERVICES["chrony"],
    }  # fmt: skip
    assert service_endpoints(services, HOSTS) == {
        "keystone": {"public": "https://203.0.113.10:5000", "internal": "https://10.0.0.250:5000"},
        "swift": {
            "public": "https://203.0.113.10:8080/v1/AUTH_%(project_id)s",
            "internal": "https://10.0.0.250:8080/v1/AUTH_%(project_id)s",
        },
    }


def test_service_endpoints_of_the_project_registry():
    endpoints = service_endpoints(load_registry(REAL_REGISTRY), HOSTS)
    assert endpoints["keystone"]["internal"] == "https://10.0.0.250:5000"
    assert {"keystone", "glance", "placement", "nova", "neutron", "cinder", "swift"} <= set(endpoints)
    assert all(url.startswith("https://") for urls in endpoints.values() for url in urls.values())


@pytest.mark.parametrize(
    ("hosts", "component", "message"),
    [
        ({"public": "p"}, {"group": "c", "haproxy": {"frontend_port": 1}, "endpoints": {"internal": "/"}},
         "no host for the internal endpoints of x"),
        (HOSTS, {"group": "c", "endpoints": {"public": "/"}}, "x has endpoints but no haproxy frontend_port"),
    ],
)  # fmt: skip
def test_service_endpoints_refuse_what_they_cannot_build(hosts, component, message):
    with pytest.raises(AnsibleFilterError, match=message):
        service_endpoints({"x": {"components": {"api": component}}}, hosts)


def test_deployed_service_types_need_hosts_in_the_api_group():
    services = {
        "glance": SERVICES["glance"],
        "cinder": {"type": "block-storage", "components": {
            "api": {"group": "controller", "haproxy": {"frontend_port": 8776}, "endpoints": {"public": "/v3"}}}},
        "swift": {"type": "object-store", "components": {
            "proxy": {"group": "swift_proxy", "haproxy": {"frontend_port": 8080}, "endpoints": {"public": "/v1"}}}},
        "chrony": SERVICES["chrony"],
    }  # fmt: skip
    # glance has no endpoints in this registry, so it is no API; swift's group has no hosts.
    assert deployed_service_types(services, {"controller": ["ctl1"], "swift_proxy": []}) == ["block-storage"]
    assert deployed_service_types(services, {"controller": ["ctl1"], "swift_proxy": ["ctl1"]}) == [
        "block-storage", "object-store",
    ]  # fmt: skip


def test_deployed_service_types_of_the_project_registry_on_an_aio():
    groups = {name: ["aio1"] for name in ("controller", "network", "compute", "storage", "glance_api", "cinder_backup")}
    types = deployed_service_types(load_registry(REAL_REGISTRY), groups)
    assert {"identity", "image", "compute", "network", "block-storage", "object-store", "placement"} <= set(types)
    assert len(types) == len(set(types))

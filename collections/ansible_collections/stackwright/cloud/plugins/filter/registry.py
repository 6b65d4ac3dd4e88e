# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filters over the service registry (stackwright_services); docs in the sidecar service_components.yml,
required_secrets.yml and component_addresses.yml."""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.module_utils.registry import (
    components_for_groups,
    required_secrets,
)


def _services(services, filter_name):
    if not isinstance(services, Mapping):
        raise AnsibleFilterError(
            f"{filter_name}: expects the service registry (stackwright_services, a mapping of service name to "
            f"service), got {type(services).__name__}"
        )
    return services


def service_components(services, group_names):
    """The components that run on a host in `group_names`, each with its `service` and `component` name."""
    # A bare string would be iterated as characters and silently match nothing.
    if isinstance(group_names, str) or not all(isinstance(g, str) for g in group_names):
        raise AnsibleFilterError(f"service_components: group_names must be a list of group names, got {group_names!r}")
    return components_for_groups(_services(services, "service_components"), group_names)


def required_secrets_filter(services):
    """Every secret name the deployment needs, sorted."""
    return required_secrets(_services(services, "required_secrets"))


def component_addresses(services, service, component, groups, hostvars):
    """`management_address:port` of every host of a component's group, in inventory order."""
    services = _services(services, "component_addresses")
    try:
        spec = services[service]["components"][component]
    except KeyError:
        raise AnsibleFilterError(f"component_addresses: the registry has no component {service}.{component}") from None
    if "port" not in spec:
        raise AnsibleFilterError(f"component_addresses: {service}.{component} has no port in the registry")
    hosts = groups.get(spec["group"])
    if not hosts:
        raise AnsibleFilterError(
            f"component_addresses: {service}.{component} runs on group {spec['group']!r}, which has no hosts"
        )
    addresses = []
    for host in hosts:
        address = hostvars[host].get("management_address")
        if not address:
            raise AnsibleFilterError(f"component_addresses: host {host} has no management_address")
        addresses.append(f"{address}:{spec['port']}")
    return addresses


class FilterModule:
    def filters(self):
        return {
            "service_components": service_components,
            "required_secrets": required_secrets_filter,
            "component_addresses": component_addresses,
        }

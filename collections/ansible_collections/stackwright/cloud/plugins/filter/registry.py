# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filters over the service registry (stackwright_services); docs in the sidecars service_components.yml,
required_secrets.yml, component_addresses.yml, service_endpoints.yml and deployed_service_types.yml."""

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.plugin_utils.registry import (
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


def _api_components(services):
    """(service name, service, component) for every component that has catalog endpoints."""
    for name, service in services.items():
        for component in service["components"].values():
            if component.get("endpoints"):
                yield name, service, component


def service_endpoints(services, hosts):
    """{service: {interface: URL}} of every component with catalog endpoints: https, the host `hosts` names for the
    interface, the component's haproxy frontend port and its path."""
    services = _services(services, "service_endpoints")
    endpoints = {}
    for name, _service, component in _api_components(services):
        urls = {}
        for interface, path in component["endpoints"].items():
            if path is None:
                continue
            if interface not in hosts:
                raise AnsibleFilterError(f"service_endpoints: no host for the {interface} endpoints of {name}")
            port = component.get("haproxy", {}).get("frontend_port")
            if port is None:
                raise AnsibleFilterError(f"service_endpoints: {name} has endpoints but no haproxy frontend_port")
            urls[interface] = f"https://{hosts[interface]}:{port}{path}"
        endpoints[name] = urls
    return endpoints


def deployed_service_types(services, groups):
    """The catalog types of the services whose API component has hosts in this inventory, without repeats."""
    services = _services(services, "deployed_service_types")
    types = []
    for _name, service, component in _api_components(services):
        if service.get("type") and groups.get(component["group"]) and service["type"] not in types:
            types.append(service["type"])
    return types


class FilterModule:
    def filters(self):
        return {
            "service_components": service_components,
            "required_secrets": required_secrets_filter,
            "component_addresses": component_addresses,
            "service_endpoints": service_endpoints,
            "deployed_service_types": deployed_service_types,
        }

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Load and validate the Stackwright service registry (one YAML file per service).

Pure Python plus PyYAML, so the vars plugin, the secrets generator and the tests share it.
"""

from __future__ import annotations

import os
import re
import types
from pathlib import Path

import yaml
from ansible_collections.stackwright.cloud.plugins.module_utils.capabilities import CAPABILITY_BITS

# Inventory group names: the role groups, or a service's own group that the inventory maps (e.g. glance_api).
GROUP_NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
ENDPOINT_INTERFACES = ("public", "internal", "admin")
HAPROXY_VIPS = ("internal", "public", "both")
HAPROXY_MODES = ("http", "tcp")
SECRET_MIN_LENGTH = 32

_SERVICE_KEYS = {
    "name": str,
    "description": str,
    "type": (str, type(None)),
    "release_package": (str, type(None)),
    "extra_packages": list,
    "database": list,
    "messaging": bool,
    "keystone_user": (str, type(None)),
    "secrets": list,
    "components": dict,
}
_REQUIRED_SERVICE_KEYS = ("name", "description", "components")
_COMPONENT_KEYS = {
    "group": str,
    "unit": str,
    "port": (int, type(None)),
    "extra_ports": dict,
    "haproxy": (dict, type(None)),
    "endpoints": (dict, type(None)),
    "wsgi": str,
    "command": str,
    "capabilities": list,
}
_REQUIRED_COMPONENT_KEYS = ("group", "unit")


class RegistryError(ValueError):
    """A registry file is malformed; the message names the file and the field."""


def _type_name(expected):
    if isinstance(expected, tuple):
        return " or ".join("null" if t is types.NoneType else t.__name__ for t in expected)
    return expected.__name__


def _check_keys(where, data, schema, required):
    if not isinstance(data, dict):
        raise RegistryError(f"{where}: expected a mapping, got {type(data).__name__}")
    for key in required:
        if key not in data:
            raise RegistryError(f"{where}: missing required field '{key}'")
    for key, value in data.items():
        if key not in schema:
            raise RegistryError(f"{where}: unknown field '{key}' (allowed: {', '.join(sorted(schema))})")
        expected = schema[key]
        allowed = expected if isinstance(expected, tuple) else (expected,)
        # bool is a subclass of int: a port of `true` is still wrong.
        if not isinstance(value, expected) or (isinstance(value, bool) and bool not in allowed):
            raise RegistryError(f"{where}: field '{key}' must be {_type_name(expected)}, got {type(value).__name__}")


def _check_port(where, value):
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise RegistryError(f"{where}: port must be an integer between 1 and 65535, got {value!r}")


def validate_service(source, service):
    """Validate one registry entry; `source` names it in error messages."""
    _check_keys(source, service, _SERVICE_KEYS, _REQUIRED_SERVICE_KEYS)
    stem = Path(source).stem
    if service["name"] != stem:
        raise RegistryError(f"{source}: name '{service['name']}' must match the file name '{stem}'")
    for secret in service.get("secrets", []):
        if not isinstance(secret, str) or not secret.startswith(f"{service['name']}_"):
            raise RegistryError(f"{source}: secret {secret!r} must be a string starting with '{service['name']}_'")
    for package in service.get("extra_packages", []):
        if not isinstance(package, str) or not package:
            raise RegistryError(f"{source}: extra_packages must be non-empty strings, got {package!r}")
    for db in service.get("database", []):
        if not isinstance(db, str) or not db:
            raise RegistryError(f"{source}: database names must be non-empty strings, got {db!r}")
    if not service["components"]:
        raise RegistryError(f"{source}: 'components' must name at least one component")
    for cname, comp in service["components"].items():
        where = f"{source}: component '{cname}'"
        _check_keys(where, comp, _COMPONENT_KEYS, _REQUIRED_COMPONENT_KEYS)
        if not GROUP_NAME_PATTERN.match(comp["group"]):
            raise RegistryError(f"{where}: group '{comp['group']}' is not a valid inventory group name")
        if comp.get("port") is not None:
            _check_port(where, comp["port"])
        for capability in comp.get("capabilities", []):
            if capability not in CAPABILITY_BITS:
                raise RegistryError(
                    f"{where}: capability {capability!r} is not a Linux capability (names as in capabilities(7), "
                    "without CAP_)"
                )
        for pname, port in comp.get("extra_ports", {}).items():
            _check_port(f"{where} extra port '{pname}'", port)
        if "wsgi" in comp or "command" in comp:
            if "wsgi" in comp and "command" in comp:
                raise RegistryError(f"{where}: a component runs either a 'wsgi' application or a 'command', not both")
            if not service.get("release_package"):
                raise RegistryError(f"{where}: 'wsgi' and 'command' need the service's 'release_package' (its venv)")
        if "wsgi" in comp:
            if comp.get("port") is None:
                raise RegistryError(f"{where}: a 'wsgi' component needs the 'port' its server listens on")
            module, _sep, app = comp["wsgi"].partition(":")
            if not module or not app:
                raise RegistryError(f"{where}: 'wsgi' must be 'python.module:callable', got {comp['wsgi']!r}")
        haproxy = comp.get("haproxy")
        if haproxy is not None:
            if comp.get("port") is None:
                raise RegistryError(f"{where}: 'haproxy' needs the component's backend 'port'")
            haproxy_schema = {
                "frontend_port": int,
                "check": str,
                "check_port": int,
                "vip": str,
                "mode": str,
                "single_active": bool,
            }
            _check_keys(f"{where} haproxy", haproxy, haproxy_schema, ("frontend_port",))
            _check_port(f"{where} haproxy", haproxy["frontend_port"])
            if "check_port" in haproxy:
                _check_port(f"{where} haproxy check", haproxy["check_port"])
            if haproxy.get("vip", "both") not in HAPROXY_VIPS:
                raise RegistryError(f"{where}: haproxy vip must be one of {', '.join(HAPROXY_VIPS)}")
            if haproxy.get("mode", "http") not in HAPROXY_MODES:
                raise RegistryError(f"{where}: haproxy mode must be one of {', '.join(HAPROXY_MODES)}")
        endpoints = comp.get("endpoints")
        if endpoints is not None:
            if not service.get("type"):
                raise RegistryError(f"{where}: endpoints need the service's Keystone 'type'")
            for iface in endpoints:
                if iface not in ENDPOINT_INTERFACES:
                    known = ", ".join(ENDPOINT_INTERFACES)
                    raise RegistryError(f"{where}: unknown endpoint interface '{iface}' (known: {known})")
    return service


def _port_owners(services):
    for name, svc in services.items():
        for cname, comp in svc["components"].items():
            if comp.get("port") is not None:
                yield "port", comp["port"], f"{name}.{cname}"
            for pname, port in comp.get("extra_ports", {}).items():
                yield "port", port, f"{name}.{cname}.{pname}"
            if comp.get("haproxy"):
                yield "frontend_port", comp["haproxy"]["frontend_port"], f"{name}.{cname}"


def validate_registry(services):
    """Checks across entries: no port or haproxy frontend port is claimed twice."""
    seen = {}
    for kind, port, owner in _port_owners(services):
        other = seen.setdefault((kind, port), owner)
        if other != owner:
            raise RegistryError(f"duplicate {kind.replace('_', ' ')} {port}: used by both {other} and {owner}")
    return services


def load_registry(directory):
    """Load every services/*.yml file below `directory`, validated, keyed by service name."""
    directory = Path(directory)
    if not directory.is_dir():
        raise RegistryError(f"service registry directory {directory} does not exist")
    services = {}
    for path in sorted(directory.glob("*.yml")):
        try:
            data = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise RegistryError(f"{path}: not valid YAML: {exc}") from exc
        services[path.stem] = validate_service(str(path), data)
    return validate_registry(services)


def default_registry_dir():
    """services/ of the project: $STACKWRIGHT_SERVICES, else relative to this checkout."""
    env = os.environ.get("STACKWRIGHT_SERVICES")
    if env:
        return Path(env)
    # collections/ansible_collections/stackwright/cloud/plugins/plugin_utils/registry.py -> project root
    return Path(__file__).resolve().parents[6] / "services"


def required_secrets(services):
    """Every secret the deployment needs, derived from the registry, sorted."""
    names = set()
    for name, svc in services.items():
        if svc.get("database"):
            names.add(f"{name}_database_password")
        if svc.get("messaging"):
            names.add(f"{name}_rabbitmq_password")
        if svc.get("keystone_user"):
            names.add(f"{name}_keystone_password")
        names.update(svc.get("secrets", []))
    return sorted(names)


def components_for_groups(services, group_names):
    """The components of every service that run on a host in `group_names`."""
    groups = set(group_names) | {"all"}
    result = []
    for name, svc in sorted(services.items()):
        for cname, comp in sorted(svc["components"].items()):
            if comp["group"] in groups:
                result.append(dict(comp, service=name, component=cname))
    return result

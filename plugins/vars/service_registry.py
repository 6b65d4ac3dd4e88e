# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
DOCUMENTATION = """
name: service_registry
short_description: Loads the Stackwright service registry and the inventory's secrets
description:
  - Loads and validates C(services/*.yml) once per run and exposes it to every host as C(stackwright_services),
    with the derived list of secrets the deployment needs as C(stackwright_required_secrets).
  - Loads C(secrets.yml) from the inventory directory (vault-encrypted or not) for every host.
  - A malformed registry entry stops the run with a message naming the file and the field.
options:
  stage:
    ini:
      - key: stage
        section: vars_service_registry
    env:
      - name: ANSIBLE_VARS_PLUGIN_STAGE
"""

import os

from ansible.errors import AnsibleError
from ansible.inventory.group import Group
from ansible.plugins.vars import BaseVarsPlugin
from ansible_collections.stackwright.cloud.plugins.module_utils.registry import (
    RegistryError,
    default_registry_dir,
    load_registry,
    required_secrets,
)

_REGISTRY_CACHE = {}


class VarsModule(BaseVarsPlugin):
    REQUIRES_ENABLED = True

    def _registry(self):
        directory = str(default_registry_dir())
        if directory not in _REGISTRY_CACHE:
            try:
                services = load_registry(directory)
            except RegistryError as exc:
                raise AnsibleError(f"Service registry: {exc}") from exc
            _REGISTRY_CACHE[directory] = {
                "stackwright_services": services,
                "stackwright_required_secrets": required_secrets(services),
            }
        return _REGISTRY_CACHE[directory]

    def get_vars(self, loader, path, entities, cache=True):
        super().get_vars(loader, path, entities)
        if not any(isinstance(e, Group) and e.name == "all" for e in entities):
            return {}
        data = dict(self._registry())
        inventory_dir = path if os.path.isdir(path) else os.path.dirname(path)
        secrets_file = os.path.join(inventory_dir, "secrets.yml")
        if os.path.isfile(secrets_file):
            secrets = loader.load_from_file(secrets_file, cache="all", unsafe=True) or {}
            if not isinstance(secrets, dict):
                raise AnsibleError(f"{secrets_file} must hold a mapping of secret names to values")
            data.update(secrets)
        return data

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
DOCUMENTATION = """
name: service_registry
short_description: Loads the Stackwright service registry and the inventory's secrets
description:
  - Loads and validates C(services/*.yml) once per run and exposes it to every host as C(stackwright_services),
    with the derived list of secrets the deployment needs as C(stackwright_required_secrets).
  - Loads C(secrets.yml) from the inventory directory (vault-encrypted or not) for every host, or the file that
    C(STACKWRIGHT_SECRETS_FILE) names (in AWX and automation controller a credential writes it, docs/awx.md).
  - Exposes where the keystone role writes the admin C(clouds.yaml) on the deploy host
    (C(stackwright_admin_clouds_yaml), C(keystone_credentials_dir)/clouds.yaml) and the cloud's name in it
    (C(stackwright_admin_cloud), C(keystone_cloud_name)), for every play and role that uses the cloud's API from the
    deploy host; also for the implicit localhost, which has no C(inventory_dir) of its own.
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
from ansible.template import trust_as_template
from ansible_collections.stackwright.cloud.plugins.plugin_utils.registry import (
    RegistryError,
    default_registry_dir,
    load_registry,
    required_secrets,
)

_REGISTRY_CACHE = {}


# Where the keystone role writes the admin clouds.yaml, and the cloud in it: an inventory's keystone_credentials_dir,
# pki_dir or keystone_cloud_name moves them as they move what the role writes (roles/keystone/defaults/main.yml). The
# implicit localhost has no inventory_dir of its own: it takes the first host's.
_INVENTORY_DIR = "(inventory_dir | default(hostvars[groups['all'] | first].inventory_dir, true))"
_CREDENTIALS_DIR = f"keystone_credentials_dir | default((pki_dir | default({_INVENTORY_DIR} ~ '/pki')) | dirname)"
ADMIN_CLOUD_VARS = {
    "stackwright_admin_clouds_yaml": f"{{{{ ({_CREDENTIALS_DIR}) ~ '/clouds.yaml' }}}}",
    "stackwright_admin_cloud": "{{ keystone_cloud_name | default('stackwright') }}",
}


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
        data.update({name: trust_as_template(value) for name, value in ADMIN_CLOUD_VARS.items()})
        secrets_file = os.environ.get("STACKWRIGHT_SECRETS_FILE") or os.path.join(inventory_dir, "secrets.yml")
        if os.environ.get("STACKWRIGHT_SECRETS_FILE") and not os.path.isfile(secrets_file):
            raise AnsibleError(f"STACKWRIGHT_SECRETS_FILE names {secrets_file}, which is not a file")
        if os.path.isfile(secrets_file):
            secrets = loader.load_from_file(secrets_file, cache="all", unsafe=True) or {}
            if not isinstance(secrets, dict):
                raise AnsibleError(f"{secrets_file} must hold a mapping of secret names to values")
            data.update(secrets)
        return data

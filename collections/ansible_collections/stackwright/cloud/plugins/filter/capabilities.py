# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filter stackwright.cloud.missing_capabilities; docs in the sidecar missing_capabilities.yml."""

from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.module_utils.capabilities import (
    CapabilityError,
)
from ansible_collections.stackwright.cloud.plugins.module_utils.capabilities import (
    missing_capabilities as _missing,
)


def missing_capabilities(proc_status, names):
    """The capabilities of `names` that the bounding set in a /proc/<pid>/status text lacks."""
    if not isinstance(proc_status, str):
        kind = type(proc_status).__name__
        raise AnsibleFilterError(f"missing_capabilities: expects the text of /proc/<pid>/status, got {kind}")
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise AnsibleFilterError(f"missing_capabilities: names must be a list of capability names, got {names!r}")
    try:
        return _missing(proc_status, list(names))
    except CapabilityError as exc:
        raise AnsibleFilterError(f"missing_capabilities: {exc}") from None


class FilterModule:
    def filters(self):
        return {"missing_capabilities": missing_capabilities}

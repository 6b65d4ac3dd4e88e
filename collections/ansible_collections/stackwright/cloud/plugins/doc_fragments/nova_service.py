# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)


class ModuleDocFragment:
    # The nova service record that compute_host and compute_service return (module_utils/nova_services.py,
    # service_record); each module describes when it returns it.
    RETURN = r"""
service:
  type: dict
  contains:
    id:
      description: Id of the service (a UUID with compute API 2.53 and newer).
      type: str
      sample: 6bd3b2b6-7f2e-4b9e-9f73-0b9a3c2e5d41
    host:
      description: Nova's name of the host.
      type: str
      sample: cmp2
    binary:
      description: The service binary.
      type: str
      sample: nova-compute
    status:
      description: V(enabled) or V(disabled) (whether the scheduler may place instances there).
      type: str
      sample: disabled
    state:
      description: V(up) or V(down) (whether the service reports in; always V(down) when forced down).
      type: str
      sample: up
    forced_down:
      description: Whether the service is forced down.
      type: bool
      sample: false
    disabled_reason:
      description: Why the service is disabled, null when no reason is recorded.
      type: str
      sample: "maintenance: firmware update"
    updated_at:
      description: When the service last reported in or was changed.
      type: str
      sample: "2025-06-02T09:14:07.000000"
"""

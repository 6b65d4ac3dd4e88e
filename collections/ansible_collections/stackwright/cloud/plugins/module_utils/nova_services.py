# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""What the modules that act on nova's services share (compute_host, compute_service, placement_audit): the compute
binary, the microversion of updates by service id, the service record they return, and how one service is found."""

from __future__ import annotations

COMPUTE_BINARY = "nova-compute"
# Updates through the service id, which carry forced_down and the disabled reason (nova 16.0.0, Pike).
SERVICE_ID_MICROVERSION = "2.53"
# nova's status of a service whose cell database it cannot reach (a partial record).
UNREACHABLE_CELL_STATUS = "UNKNOWN"


class ServiceLookupError(Exception):
    """The services nova lists do not name one usable service for the host; the message says what to do."""


def service_record(service):
    """The record the modules return for an openstacksdk compute Service (RETURN `service`)."""
    return {
        "id": service.id,
        "host": service.host,
        "binary": service.binary,
        "status": service.status,
        "state": service.state,
        "forced_down": service.is_forced_down,
        "disabled_reason": service.disabled_reason,
        "updated_at": service.updated_at,
    }


def find_service(services, host, binary, stale_hint):
    """The one service of `binary` on `host` among `services` (a listing of that binary), or None when there is none.

    Raises ServiceLookupError when nova lists two (a host in two cells; `stale_hint` says how to delete the stale one)
    or cannot reach the host's cell."""
    found = [service for service in services if service.host == host and service.binary == binary]
    if len(found) > 1:
        ids = ", ".join(str(service.id) for service in found)
        raise ServiceLookupError(
            f"nova has {len(found)} {binary} services on host {host!r} ({ids}), in different cells; {stale_hint}"
        )
    if found and found[0].status == UNREACHABLE_CELL_STATUS:
        raise ServiceLookupError(
            f"nova cannot reach the cell of host {host!r} (service status {UNREACHABLE_CELL_STATUS}); fix that first"
        )
    return found[0] if found else None


def known_hosts(services):
    """The hosts of `services`, for a message that names what nova knows."""
    return ", ".join(sorted({service.host for service in services})) or "none"


def service_id_microversion_problem(sdk, compute):
    """Why this cloud cannot take an update by service id, or None when it can."""
    if sdk.utils.supports_microversion(compute, SERVICE_ID_MICROVERSION):
        return None
    return (
        f"changing a service needs compute API microversion {SERVICE_ID_MICROVERSION} or newer; this cloud offers "
        "less, or compute_api_version in clouds.yaml pins an older one. Nothing was changed."
    )

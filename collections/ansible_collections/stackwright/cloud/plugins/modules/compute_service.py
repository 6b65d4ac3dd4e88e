# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compute_service
short_description: Force a nova-compute service down or up, update its disabled reason, or delete its record
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Adds to M(openstack.cloud.compute_service) what it lacks. That module (openstack.cloud 2.6.0 and newer) enables
    and disables a compute service; use it for that. This one does not enable or disable a service.
  - >-
    O(forced_down) sets nova's force-down flag of the service (compute API microversion 2.53 or newer, through the
    service id). A service forced down is reported down at once, so that instances of a fenced host can be evacuated
    without waiting for nova's service timeout.
  - >-
    O(disabled_reason) sets the reason of a service that is already disabled. M(openstack.cloud.compute_service)
    leaves the reason of a disabled service as it is, even when it is given another one.
  - >-
    O(state=absent) deletes the service record (C(openstack compute service delete)). For V(nova-compute), nova then
    also removes the host from its aggregates, deletes its resource providers in placement and its host mapping.
  - Reports C(changed) only when the service differs from what is asked.
options:
  host:
    description:
      - Nova's name of the host, as C(openstack compute service list) shows it (C([DEFAULT] host) of nova.conf,
        usually the short host name).
    type: str
    required: true
  binary:
    description:
      - The service on O(host). Nova only changes V(nova-compute) services (O(forced_down), O(disabled_reason));
        O(state=absent) deletes any binary.
    type: str
    default: nova-compute
  state:
    description:
      - V(present) checks that the service exists and applies O(forced_down) and O(disabled_reason). It fails when
        O(host) has no such service (nova-compute creates its record itself when it starts).
      - >-
        V(absent) deletes the service record, and is unchanged when there is none. It refuses, before it deletes
        anything, while the service still reports up (a service that still runs registers itself again at its next
        start, and nova-compute re-creates its compute node while it runs) and, for V(nova-compute), while O(host)
        still has instances. See O(force).
    type: str
    choices: [present, absent]
    default: present
  forced_down:
    description:
      - With O(state=present), V(true) forces the service down, V(false) lifts the force-down. Unset leaves it.
      - Force a service down only when its host is fenced (powered off or cut off from the network and storage); a
        host that still runs its instances must not have them evacuated.
    type: bool
  disabled_reason:
    description:
      - >-
        With O(state=present), the reason recorded for the disabled service. A different reason replaces it; an
        empty string clears it. Unset leaves it.
      - >-
        Fails when the service is enabled: disable it first with M(openstack.cloud.compute_service)
        (C(status: disabled) and the same C(disabled_reason)), then this module keeps the reason up to date.
    type: str
  force:
    description:
      - With O(state=absent), skip this module's checks (service still up, instances on the host).
      - >-
        It cannot override nova: nova itself refuses (HTTP 409) to delete the compute service of a host that still
        has instances or in-progress migrations, and this module then fails with nova's message.
    type: bool
    default: false
extends_documentation_fragment:
  - openstack.cloud.openstack
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.openstack_api
attributes:
  check_mode:
    details: Runs every check and reports what would change, and the service as it would be, without a write call.
notes:
  - Needs admin credentials of the cloud (nova's default policy allows these calls to admins only).
seealso:
  - module: openstack.cloud.compute_service
    description: Enable and disable a compute service.
  - module: openstack.cloud.compute_service_info
    description: List compute services.
  - name: Compute API, compute services
    description: What force-down, the disabled reason and the deletion do in nova.
    link: https://docs.openstack.org/api-ref/compute/#compute-services-os-services
"""

EXAMPLES = r"""
- name: Take cmp2 out of scheduling, with a reason
  openstack.cloud.compute_service:
    cloud: admin
    host: cmp2
    binary: nova-compute
    status: disabled
    disabled_reason: "maintenance: firmware update"

- name: Keep the reason current when cmp2 was already disabled for something else
  stackwright.cloud.compute_service:
    cloud: admin
    host: cmp2
    disabled_reason: "maintenance: firmware update"

- name: Force cmp3 down after it was fenced, so that its instances can be evacuated
  stackwright.cloud.compute_service:
    cloud: admin
    host: cmp3
    forced_down: true

- name: Delete the record of the decommissioned cmp3 (empty, nova-compute stopped)
  stackwright.cloud.compute_service:
    cloud: admin
    host: cmp3
    state: absent
"""

RETURN = r"""
# The contents of `service`: doc_fragments/nova_service.py.
extends_documentation_fragment:
  - stackwright.cloud.nova_service
service:
  description:
    - The service after the task. In check mode, as it would be after the task.
    - With O(state=absent), the record as it was before the deletion; null when there was none.
  returned: always
msg:
  description: What the task did, or would do in check mode.
  returned: always
  type: str
  sample: "nova-compute on cmp3: forced down"
"""

from typing import ClassVar

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule
from ansible_collections.stackwright.cloud.plugins.module_utils.nova_services import (
    COMPUTE_BINARY,
    ServiceLookupError,
    find_service,
    known_hosts,
    service_id_microversion_problem,
    service_record,
)

LISTED_INSTANCES = 5


class ComputeServiceModule(OpenStackModule):
    argument_spec: ClassVar[dict] = dict(
        host=dict(type="str", required=True),
        binary=dict(type="str", default=COMPUTE_BINARY),
        state=dict(type="str", default="present", choices=["present", "absent"]),
        forced_down=dict(type="bool"),
        disabled_reason=dict(type="str"),
        force=dict(type="bool", default=False),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True)

    def run(self):
        host, binary = self.params["host"], self.params["binary"]
        if self.params["state"] == "absent":
            if self.params["forced_down"] is not None or self.params["disabled_reason"] is not None:
                self.fail_json(msg="forced_down and disabled_reason apply to state=present only; drop them to delete")
            self.absent(host, binary)
        else:
            self.present(host, binary)

    def find(self, host, binary):
        """The service of binary on host, or None, and the hosts nova lists for that binary (to name them on a miss)."""
        services = list(self.conn.compute.services(binary=binary))
        try:
            service = find_service(
                services, host, binary, "delete the stale one by hand (openstack compute service delete <id>)"
            )
        except ServiceLookupError as error:
            self.fail_json(msg=str(error))
        return service, known_hosts(services)

    def present(self, host, binary):
        service, known = self.find(host, binary)
        if service is None:
            self.fail_json(
                msg=f"nova has no {binary} service on host {host!r} (hosts with {binary}: "
                f"{known}). Give nova's name of the host ([DEFAULT] host of nova.conf, as "
                f"'openstack compute service list --service {binary}' shows it), or start {binary} there so that "
                "it registers."
            )
        current = service_record(service)
        forced, reason = self.params["forced_down"], self.params["disabled_reason"]
        if (forced is not None or reason is not None) and binary != COMPUTE_BINARY:
            self.fail_json(
                msg=f"nova changes only nova-compute services; {binary} has no force-down flag and no disabled reason"
            )

        attrs, done = {}, []
        if forced is not None and forced != bool(current["forced_down"]):
            attrs["forced_down"] = forced
            done.append(("forced down", "force down") if forced else ("force-down lifted", "lift the force-down"))
        if reason is not None:
            if current["status"] != "disabled":
                self.fail_json(
                    msg=f"{binary} on {host} is enabled, and this module only updates the reason of a disabled "
                    f"service. Disable it with openstack.cloud.compute_service (status: disabled, "
                    f"disabled_reason: {reason!r}) first."
                )
            if reason != (current["disabled_reason"] or ""):
                # Nova replaces the reason only together with the status; without a reason it clears it.
                attrs["status"] = "disabled"
                if reason:
                    attrs["disabled_reason"] = reason
                done.append(
                    (f"reason set to {reason!r}", f"set the reason to {reason!r}")
                    if reason
                    else ("reason cleared", "clear the reason")
                )

        if not attrs:
            self.exit_json(changed=False, service=current, msg=f"{binary} on {host}: already as asked")

        problem = service_id_microversion_problem(self.sdk, self.conn.compute)
        if problem:
            self.fail_json(msg=problem)
        if forced and current["state"] == "up":
            self.warn(
                f"{binary} on {host} still reports up. Force a service down only when its host is fenced, or "
                "evacuating its instances starts them a second time elsewhere."
            )

        if self.check_mode:
            if "forced_down" in attrs:
                current["forced_down"] = forced
                if forced:
                    current["state"] = "down"
            if "status" in attrs:
                current["disabled_reason"] = reason or None
            would = " and ".join(imperative for _past, imperative in done)
            self.exit_json(changed=True, service=current, msg=f"{binary} on {host}: would {would}")
        # By id, not the read resource: the SDK sends only attributes that differ from what it read, and nova takes
        # a new reason only with the status it already has.
        updated = self.conn.compute.update_service(service.id, **attrs)
        self.exit_json(
            changed=True, service=service_record(updated), msg=f"{binary} on {host}: " + ", ".join(p for p, _i in done)
        )

    def absent(self, host, binary):
        service, _known = self.find(host, binary)
        if service is None:
            self.exit_json(changed=False, service=None, msg=f"no {binary} on {host}, nothing to delete")
        current = service_record(service)

        if not self.params["force"]:
            reasons = []
            if current["state"] == "up":
                reasons.append(
                    f"{binary} on {host} still reports up (last at {current['updated_at']}). A running {binary} "
                    "registers itself again (nova-compute at its next start, and it re-creates its compute node "
                    f"while it runs), so the deletion would not last: stop it (systemctl stop {binary}) and wait "
                    "until nova reports it down, or force it down (forced_down: true) once the host is fenced."
                )
            if binary == COMPUTE_BINARY:
                servers = list(self.conn.compute.servers(details=False, all_projects=True, compute_host=host))
                if servers:
                    names = ", ".join(f"{server.name} ({server.id})" for server in servers[:LISTED_INSTANCES])
                    more = f" and {len(servers) - LISTED_INSTANCES} more" if len(servers) > LISTED_INSTANCES else ""
                    reasons.append(
                        f"host {host} still has {len(servers)} instance(s): {names}{more}. Migrate or delete them "
                        "first; nova refuses to delete a compute service that hosts instances."
                    )
            if reasons:
                self.fail_json(
                    msg=f"not deleting {binary} on {host}: " + " ".join(reasons) + " force: true skips these checks.",
                    service=current,
                )

        if self.check_mode:
            self.exit_json(changed=True, service=current, msg=f"would delete {binary} on {host}")
        try:
            self.conn.compute.delete_service(service, ignore_missing=True)
        except self.sdk.exceptions.ConflictException as error:
            self.fail_json(
                msg=f"nova refused to delete {binary} on {host}: {error.details or error}. Migrate or delete the "
                "instances of the host and let its migrations finish (confirm or revert resizes), then run again.",
                service=current,
            )
        self.exit_json(changed=True, service=current, msg=f"{binary} on {host}: deleted")


def main():
    module = ComputeServiceModule()
    module()


if __name__ == "__main__":
    main()

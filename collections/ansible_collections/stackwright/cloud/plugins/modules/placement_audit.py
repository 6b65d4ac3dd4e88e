# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: placement_audit
short_description: Find, and optionally delete, orphaned allocations and compute-node resource providers in placement
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Compares placement with nova through their APIs, with the connection options of openstack.cloud. It does the job
    of C(nova-manage placement audit) from wherever openstacksdk runs, without nova's configuration and database.
  - >-
    A compute-node resource provider is a provider with the trait C(COMPUTE_NODE) (nova-compute sets it on the
    provider of each compute node), or one whose UUID is the id of a hypervisor. The module reads the allocations of
    each such provider and of the providers in its tree (vGPU, PCI, bandwidth child providers).
  - >-
    An B(orphaned allocation) is a consumer holding resources on the tree of a compute node that is not a server
    nova places on that compute node: a deleted server, a server now on another host (an evacuation whose source
    host never came back, a migration that did not clean up), or the consumer of a migration that is over.
  - >-
    Not orphaned, and listed in RV(skipped_allocations) instead: a server with a task state (nova is doing something
    with it, such as a migration, a resize, an evacuation or an unshelve), a server in status C(MIGRATING),
    C(RESIZE), C(VERIFY_RESIZE) or C(REVERT_RESIZE), a server with a migration in progress from or to the host, the
    consumer of a migration in progress (nova holds the source host's resources with the migration's UUID until the
    migration is confirmed or reverted), a server in a cell nova cannot reach (status C(UNKNOWN)), and a consumer
    whose resources on the provider are none of nova's resource classes (another service's consumer).
  - >-
    An evacuation (migration status C(done)) counts as in progress while its source host still has a nova-compute
    service: that service removes the server's allocation from the source when it starts again. When the service was
    deleted instead, the allocation stays forever and is orphaned.
  - >-
    An B(orphaned resource provider) is a compute-node provider whose UUID is the id of no compute node nova knows:
    its nova-compute service was deleted while placement kept the provider (typically because it still held
    allocations), or the compute node was recreated under another UUID.
  - >-
    With O(fix=true), the module removes each orphaned allocation, only from the provider tree where it is
    orphaned: a consumer that holds nothing else loses its allocations (C(DELETE /allocations/{consumer})); one that
    also holds resources elsewhere (a server evacuated to another host) keeps those, written back with its consumer
    generation. Then it deletes each orphaned provider whose tree holds no allocation any more (children first).
    An orphaned provider that still holds allocations is kept and reported.
  - Reports C(changed) only when something was deleted, or in check mode would be.
options:
  fix:
    description:
      - V(false) only reports. V(true) deletes the orphaned allocations and the orphaned providers without
        allocations.
    type: bool
    default: false
  host:
    description:
      - Audit only the compute-node provider of this host. Matches nova's host name of the compute service, the
        hypervisor host name (the provider's name) or the provider's UUID.
      - When nothing matches, the module warns and reports nothing (a provider it deleted before no longer matches).
    type: str
extends_documentation_fragment:
  - openstack.cloud.openstack
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.openstack_api
attributes:
  check_mode:
    details: With O(fix=true), reads everything and reports what would be deleted, without a write call.
notes:
  - >-
    Needs admin credentials of the cloud (placement and nova allow these calls to admins only), placement API
    microversion 1.28 or newer and compute API microversion 2.59 or newer (nova 18.0.0, Rocky).
  - >-
    While nova cannot reach a cell (a compute service in status C(UNKNOWN)), the module judges no provider orphaned,
    since the compute nodes of that cell are missing from nova's answer, and warns.
  - >-
    A consumer that appears between the reads of placement and nova (a server being built right now) could look
    orphaned. Run O(fix=true) after a report-only run, or when the cloud is quiet.
seealso:
  - name: nova-manage placement audit
    description: Nova's host-side tool for the same job.
    link: https://docs.openstack.org/nova/latest/cli/nova-manage.html#placement-audit
  - name: Orphaned resource allocations
    description: How allocations become orphaned in nova, and how to clean them up by hand.
    link: https://docs.openstack.org/nova/latest/admin/troubleshooting/orphaned-allocations.html
  - name: Placement API reference
    description: The resource providers and allocations this module reads and deletes.
    link: https://docs.openstack.org/api-ref/placement/
"""

EXAMPLES = r"""
- name: Report orphaned allocations and providers of the whole cloud
  stackwright.cloud.placement_audit:
    cloud: admin
  register: audit

- name: Show them
  ansible.builtin.debug:
    msg: "{{ audit.orphaned_allocations + audit.orphaned_providers }}"

- name: Fail when placement and nova disagree
  ansible.builtin.assert:
    that: audit.orphaned_allocations | length == 0 and audit.orphaned_providers | length == 0
    fail_msg: "{{ audit.msg }}"
    quiet: true

- name: After cmp3 was decommissioned, clean its leftovers in placement
  stackwright.cloud.placement_audit:
    cloud: admin
    host: cmp3
    fix: true

- name: What would be deleted in the whole cloud
  stackwright.cloud.placement_audit:
    cloud: admin
    fix: true
  check_mode: true
"""

RETURN = r"""
orphaned_allocations:
  description:
    - One entry per orphaned consumer and resource provider, sorted by provider name and consumer.
  returned: always
  type: list
  elements: dict
  contains:
    consumer_id:
      description: UUID of the consumer (a server's or a migration's UUID, in nova's case).
      type: str
      sample: 3f1d2c4b-5a6e-4f70-8b9c-0d1e2f3a4b5c
    resource_provider_id:
      description: UUID of the provider holding the allocation.
      type: str
      sample: 523d8944-528d-4ed0-9be9-783df23d9b0d
    resource_provider_name:
      description: Name of that provider.
      type: str
      sample: cmp2
    compute_node:
      description: Name of the compute-node provider at the root of its tree (the same for a compute-node provider).
      type: str
      sample: cmp2
    host:
      description: Nova's host of that compute node; the provider's name for an orphaned provider.
      type: str
      sample: cmp2
    resources:
      description: The resources held, by resource class.
      type: dict
      sample: {VCPU: 2, MEMORY_MB: 2048, DISK_GB: 20}
    reason:
      description: Why the allocation is orphaned.
      type: str
      sample: no server and no migration of host cmp2 has this UUID (deleted server)
    action:
      description:
        - V(reported) with O(fix=false), V(deleted) when it was removed, V(would delete) in check mode,
          V(already gone) when placement no longer had it when the module came to remove it.
      type: str
      sample: deleted
orphaned_providers:
  description: Compute-node providers that no compute node of nova matches, sorted by name.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: UUID of the provider.
      type: str
      sample: 9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c03
    name:
      description: Name of the provider (the hypervisor host name of the compute node it was).
      type: str
      sample: cmp3
    children:
      description: UUIDs of the other providers of its tree, deleted with it.
      type: list
      elements: str
      sample: []
    service:
      description: Whether nova still has a nova-compute service on a host of that name (then its compute node was
        recreated under another UUID).
      type: bool
      sample: false
    allocations:
      description: How many consumers held allocations on its tree when the audit read it.
      type: int
      sample: 1
    remaining_allocations:
      description: How many consumers hold allocations on its tree that the audit does not remove (not orphaned).
      type: int
      sample: 0
    action:
      description:
        - V(reported) with O(fix=false), V(deleted), V(would delete) in check mode, V(kept) when allocations
          remain on its tree.
      type: str
      sample: kept
skipped_allocations:
  description:
    - >-
      Allocations the audit did not judge orphaned although they are not a plain server of the compute node:
      migrations in progress, servers with a task state, servers in unreachable cells, consumers of other services.
  returned: always
  type: list
  elements: dict
  contains:
    consumer_id:
      description: UUID of the consumer.
      type: str
    resource_provider_id:
      description: UUID of the provider.
      type: str
    resource_provider_name:
      description: Name of the provider.
      type: str
    host:
      description: Nova's host of the compute node.
      type: str
    resources:
      description: The resources held, by resource class.
      type: dict
    reason:
      description: Why it was not judged orphaned.
      type: str
      sample: "server vm-1 is in a migration (task state: resize_migrating)"
summary:
  description:
    - Counts. In check mode, C(deleted_allocations) and C(deleted_providers) count what would be deleted.
  returned: always
  type: dict
  sample:
    providers_checked: 3
    consumers_checked: 41
    orphaned_allocations: 1
    orphaned_providers: 0
    deleted_allocations: 1
    deleted_providers: 0
msg:
  description: A one-line summary.
  returned: always
  type: str
  sample: "1 orphaned allocation (1 deleted), no orphaned provider; 3 compute-node providers checked"
"""

from typing import ClassVar

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule
from ansible_collections.stackwright.cloud.plugins.module_utils.nova_services import (
    COMPUTE_BINARY,
    UNREACHABLE_CELL_STATUS,
)

COMPUTE_NODE_TRAIT = "COMPUTE_NODE"
# Hypervisor ids are compute node UUIDs from 2.53; migrations carry their UUID from 2.59.
COMPUTE_MICROVERSION = "2.59"
# Consumer generations in GET and PUT /allocations/{consumer} (1.28); consumer types (1.38).
PLACEMENT_MIN_MICROVERSION = "1.28"
PLACEMENT_TYPED_MICROVERSION = "1.38"
# Migration statuses after which nova no longer needs the migration's allocation.
MIGRATION_OVER = frozenset({"completed", "confirmed", "reverted", "error", "failed", "cancelled"})
# "done": an evacuation rebuilt the server elsewhere; the source's nova-compute cleans up when it starts again.
EVACUATION_DONE = "done"
MIGRATING_STATUSES = frozenset({"MIGRATING", "RESIZE", "VERIFY_RESIZE", "REVERT_RESIZE"})
# The resource classes nova allocates for servers (PCI devices in placement: CUSTOM_PCI_<vendor>_<product>).
NOVA_CLASSES = frozenset({"VCPU", "PCPU", "MEMORY_MB", "DISK_GB", "VGPU", "MEM_ENCRYPTION_CONTEXT"})
NOVA_CLASS_PREFIXES = ("NET_BW_", "NET_PACKET_RATE_", "CUSTOM_PCI_")


def is_nova_consumer(resources):
    return any(rc in NOVA_CLASSES or rc.startswith(NOVA_CLASS_PREFIXES) for rc in resources)


def plural(count, word):
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


class PlacementAuditModule(OpenStackModule):
    argument_spec: ClassVar[dict] = dict(
        fix=dict(type="bool", default=False),
        host=dict(type="str"),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True)

    def run(self):
        self.check_microversions()
        services = list(self.conn.compute.services(binary=COMPUTE_BINARY))
        self.service_hosts = {service.host for service in services}
        unreachable_cells = any(service.status == UNREACHABLE_CELL_STATUS for service in services)
        self.nodes = {}  # compute node UUID -> (hypervisor host name, nova's host)
        for hypervisor in self.conn.compute.hypervisors(details=True):
            self.nodes[hypervisor.id] = (hypervisor.name, (hypervisor.service_details or {}).get("host"))
        self.servers_by_host = {}
        self.migrations_by_host = {}
        self.servers = {}

        roots = self.compute_providers()
        if unreachable_cells:
            self.warn(
                "nova cannot reach a cell (a nova-compute service has status UNKNOWN): its compute nodes are missing "
                "from nova's answer, so no provider is judged orphaned until nova reaches every cell again"
            )

        orphaned, skipped, providers, consumers = [], [], [], set()
        for root in roots:
            node_name, host = self.nodes.get(root.id, (root.name, None))
            orphan_provider = root.id not in self.nodes and not unreachable_cells
            host = host or root.name
            tree = [root, *(p for p in self.conn.placement.resource_providers(in_tree=root.id) if p.id != root.id)]
            tree_consumers = set()
            for provider in tree:
                for allocation in self.conn.placement.resource_provider_allocations(provider.id):
                    consumer, resources = allocation.consumer_id, dict(allocation.resources or {})
                    consumers.add(consumer)
                    tree_consumers.add(consumer)
                    entry = {
                        "consumer_id": consumer,
                        "resource_provider_id": provider.id,
                        "resource_provider_name": provider.name,
                        "compute_node": root.name,
                        "host": host,
                        "resources": resources,
                    }
                    verdict, reason = self.judge(consumer, resources, host, node_name)
                    if verdict == "orphaned":
                        orphaned.append({**entry, "reason": reason, "action": "reported"})
                    elif verdict == "skipped":
                        skipped.append({**entry, "reason": reason})
            if orphan_provider:
                providers.append({
                    "id": root.id,
                    "name": root.name,
                    "children": [p.id for p in tree[1:]],
                    "service": root.name in self.service_hosts,
                    "allocations": len(tree_consumers),
                    "tree": tree,
                    "consumers": tree_consumers,
                    "action": "reported",
                })  # fmt: skip

        deleted_allocations = deleted_providers = 0
        if self.params["fix"]:
            deleted_allocations = self.remove_allocations(orphaned)
            deleted_providers = self.remove_providers(providers, orphaned)
        for provider in providers:
            tree_ids = {p.id for p in provider.pop("tree")}
            orphan_consumers = {e["consumer_id"] for e in orphaned if e["resource_provider_id"] in tree_ids}
            provider.setdefault("remaining_allocations", len(provider["consumers"] - orphan_consumers))
            del provider["consumers"]

        orphaned.sort(key=lambda e: (e["resource_provider_name"], e["consumer_id"]))
        skipped.sort(key=lambda e: (e["resource_provider_name"], e["consumer_id"]))
        providers.sort(key=lambda p: (p["name"], p["id"]))
        summary = {
            "providers_checked": len(roots),
            "consumers_checked": len(consumers),
            "orphaned_allocations": len(orphaned),
            "orphaned_providers": len(providers),
            "deleted_allocations": deleted_allocations,
            "deleted_providers": deleted_providers,
        }
        self.exit_json(
            changed=bool(deleted_allocations or deleted_providers),
            orphaned_allocations=orphaned,
            orphaned_providers=providers,
            skipped_allocations=skipped,
            summary=summary,
            msg=self.message(summary),
        )

    def check_microversions(self):
        self.require(self.conn.compute, "compute", COMPUTE_MICROVERSION, "compute node and migration UUIDs")
        self.require(self.conn.placement, "placement", PLACEMENT_MIN_MICROVERSION, "consumer generations")
        self.placement_microversion = (
            PLACEMENT_TYPED_MICROVERSION
            if self.sdk.utils.supports_microversion(self.conn.placement, PLACEMENT_TYPED_MICROVERSION)
            else PLACEMENT_MIN_MICROVERSION
        )

    def require(self, proxy, service, microversion, why):
        data = proxy.get_endpoint_data()
        if data is None or not data.max_microversion:
            self.fail_json(
                msg=f"could not read the microversions of the {service} API from its version document (is the "
                "service up and reachable?); run again when it answers"
            )
        if not self.sdk.utils.supports_microversion(proxy, microversion):
            self.fail_json(
                msg=f"the audit needs {service} API microversion {microversion} or newer ({why}); this cloud offers "
                f"{data.min_microversion} to {data.max_microversion}, or {service}_api_version in clouds.yaml pins "
                "an older one"
            )

    def compute_providers(self):
        """The root providers of compute nodes, limited to the host option."""
        roots = {p.id: p for p in self.conn.placement.resource_providers(required=COMPUTE_NODE_TRAIT)}
        for provider in self.conn.placement.resource_providers():
            if provider.id in self.nodes and provider.id not in roots:
                roots[provider.id] = provider
        roots = [p for p in roots.values() if not p.parent_provider_id or p.parent_provider_id == p.id]
        wanted = self.params["host"]
        if wanted:
            roots = [p for p in roots if wanted in (p.id, p.name, self.nodes.get(p.id, (None, None))[1])]
            if not roots:
                self.warn(
                    f"no compute-node provider in placement matches host {wanted!r} (its name, its UUID or nova's "
                    "host of its compute node): nothing audited"
                )
        return sorted(roots, key=lambda p: (p.name or "", p.id))

    # -- judging one consumer -------------------------------------------------------------------------------------

    def host_servers(self, host):
        if host not in self.servers_by_host:
            servers = list(self.conn.compute.servers(details=True, all_projects=True, compute_host=host))
            self.servers_by_host[host] = {server.id: server for server in servers}
            self.servers.update(self.servers_by_host[host])
        return self.servers_by_host[host]

    def host_migrations(self, host):
        """Migrations from or to host (nova's host filter matches the source and the destination)."""
        if host not in self.migrations_by_host:
            self.migrations_by_host[host] = list(self.conn.compute.migrations(host=host))
        return self.migrations_by_host[host]

    def server(self, consumer):
        """The server with this UUID in any project, or None when nova has none."""
        if consumer not in self.servers:
            try:
                self.servers[consumer] = self.conn.compute.get_server(consumer)
            except self.sdk.exceptions.NotFoundException:
                self.servers[consumer] = None
        return self.servers[consumer]

    def in_progress(self, migration):
        if migration.status in MIGRATION_OVER:
            return False
        if migration.status == EVACUATION_DONE:
            return migration.source_compute in self.service_hosts
        return True

    def judge(self, consumer, resources, host, node):
        """('valid' | 'skipped' | 'orphaned', reason) for the allocation of consumer on the tree of node."""
        if not is_nova_consumer(resources):
            return "skipped", f"none of nova's resource classes ({', '.join(sorted(resources))}): not nova's consumer"
        on_host = self.host_servers(host)
        if consumer in on_host and self.on_node(on_host[consumer], host, node):
            return "valid", None
        migrations = self.host_migrations(host)
        migration = next((m for m in migrations if m.uuid == consumer), None)
        if migration is not None:
            what = f"migration {consumer} ({migration.migration_type}) of server {migration.server_id}"
            if self.in_progress(migration):
                return "skipped", f"{what} is in progress (status {migration.status})"
            return "orphaned", f"{what} is over (status {migration.status}) but still holds resources"

        server = on_host.get(consumer) or self.server(consumer)
        if server is None:
            return "orphaned", f"no server and no migration of host {host} has this UUID (deleted server)"
        name = f"server {server.name}"
        if server.status == "UNKNOWN":
            return "skipped", f"{name} is in a cell nova cannot reach (status UNKNOWN)"
        if self.on_node(server, host, node):
            return "valid", None
        if server.task_state:
            return "skipped", f"{name} is in a migration or another operation (task state: {server.task_state})"
        if server.status in MIGRATING_STATUSES:
            return "skipped", f"{name} is in a migration (status {server.status})"
        for migration in migrations:
            if migration.server_id == consumer and self.in_progress(migration):
                return "skipped", (
                    f"{name} has migration {migration.uuid} ({migration.migration_type}, status {migration.status}) "
                    f"from {migration.source_compute} to {migration.dest_compute} in progress"
                )
        where = f"host {server.compute_host}" if server.compute_host else "no host (shelved or never scheduled)"
        return "orphaned", f"{name} is on {where}, not on {host}"

    @staticmethod
    def on_node(server, host, node):
        if server.hypervisor_hostname:
            return server.hypervisor_hostname == node and server.compute_host == host
        return server.compute_host == host

    # -- fixing ---------------------------------------------------------------------------------------------------

    def placement_call(self, method, consumer, body=None, microversion=None):
        kwargs = {"microversion": microversion or self.placement_microversion}
        if body is not None:
            kwargs["json"] = body
        response = getattr(self.conn.placement, method)(f"/allocations/{consumer}", **kwargs)
        self.sdk.exceptions.raise_from_response(response)
        return response

    def remove_allocations(self, orphaned):
        """Remove each orphaned allocation from its provider only; returns how many were (or would be) removed."""
        by_consumer = {}
        for entry in orphaned:
            by_consumer.setdefault(entry["consumer_id"], []).append(entry)
        removed = 0
        for consumer, entries in sorted(by_consumer.items()):
            current = self.placement_call("get", consumer).json()
            held = current.get("allocations") or {}
            gone = {entry["resource_provider_id"] for entry in entries} & set(held)
            if gone and not self.check_mode:
                keep = {rp: {"resources": alloc["resources"]} for rp, alloc in held.items() if rp not in gone}
                if keep:
                    self.write_back(consumer, current, keep)
                else:
                    try:
                        self.placement_call("delete", consumer)
                    except self.sdk.exceptions.NotFoundException:
                        gone = set()  # removed by someone else since the read (nova finishing a deletion)
            for entry in entries:
                if entry["resource_provider_id"] in gone:
                    entry["action"] = "would delete" if self.check_mode else "deleted"
                    removed += 1
                elif self.params["fix"]:
                    entry["action"] = "already gone"
        return removed

    def write_back(self, consumer, current, keep):
        """PUT the allocations the consumer keeps elsewhere, guarded by its consumer generation."""
        body = {
            "allocations": keep,
            "consumer_generation": current.get("consumer_generation"),
            "project_id": current.get("project_id"),
            "user_id": current.get("user_id"),
        }
        microversion = PLACEMENT_MIN_MICROVERSION
        consumer_type = current.get("consumer_type")
        if self.placement_microversion == PLACEMENT_TYPED_MICROVERSION and consumer_type and consumer_type.isupper():
            # Keep the consumer's type (INSTANCE, MIGRATION); older microversions leave it as it is.
            body["consumer_type"] = consumer_type
            microversion = PLACEMENT_TYPED_MICROVERSION
        try:
            self.placement_call("put", consumer, body, microversion=microversion)
        except self.sdk.exceptions.ConflictException as error:
            self.fail_json(
                msg=f"placement refused to update the allocations of consumer {consumer}: {error.details or error}. "
                "It changed while the audit ran (nova is working on it); run the audit again."
            )

    def remove_providers(self, providers, orphaned):
        """Delete each orphaned provider whose tree holds no allocation (any more); returns how many."""
        deleted = 0
        for provider in providers:
            tree = provider["tree"]
            tree_ids = {p.id for p in tree}
            if self.check_mode:
                removed = {
                    e["consumer_id"]
                    for e in orphaned
                    if e["resource_provider_id"] in tree_ids and e["action"] == "would delete"
                }
                remaining = provider["consumers"] - removed
            else:
                remaining = {
                    a.consumer_id for p in tree for a in self.conn.placement.resource_provider_allocations(p.id)
                }
            provider["remaining_allocations"] = len(remaining)
            if remaining:
                provider["action"] = "kept"
                continue
            if not self.check_mode:
                # Deepest first: placement refuses to delete a provider that has children.
                for pid in sorted(tree_ids, key=lambda pid: -self.depth(pid, tree)):
                    self.conn.placement.delete_resource_provider(pid, ignore_missing=True)
            provider["action"] = "would delete" if self.check_mode else "deleted"
            deleted += 1
        return deleted

    @staticmethod
    def depth(pid, tree):
        parents = {p.id: p.parent_provider_id for p in tree}
        depth = 0
        while parents.get(pid) in parents and depth <= len(tree):
            pid, depth = parents[pid], depth + 1
        return depth

    def message(self, summary):
        verb = "would be deleted" if self.check_mode else "deleted"
        parts = []
        for kind, noun in (("allocations", "orphaned allocation"), ("providers", "orphaned provider")):
            found, done = summary[f"orphaned_{kind}"], summary[f"deleted_{kind}"]
            text = plural(found, noun) if found else f"no {noun}"
            if self.params["fix"] and found:
                text += f" ({done} {verb})"
            parts.append(text)
        return ", ".join(parts) + f"; {plural(summary['providers_checked'], 'compute-node provider')} checked"


def main():
    module = PlacementAuditModule()
    module()


if __name__ == "__main__":
    main()

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: keystone_registration
short_description: Register one OpenStack service in Keystone (catalog entry, endpoints, user, roles) in one call
version_added: 0.1.0
author:
  - Stackwright contributors (@stackwright)
description:
  - >-
    Does in one module call what otherwise takes M(openstack.cloud.catalog_service), one
    M(openstack.cloud.endpoint) per interface, M(openstack.cloud.identity_user) and one
    M(openstack.cloud.role_assignment) per role, each a process of its own that authenticates again. It reads the
    catalog, the endpoints of the service, the user and its role assignments once each, then makes only the writes
    that are needed.
  - >-
    It only creates and updates. It never deletes a service, an endpoint, a user or a role assignment, and leaves
    alone everything it is not asked about (other endpoints of the service, other roles of the user).
  - Reports C(changed) only when it wrote something (or would have, in check mode), and lists each write in
    RV(actions).
options:
  service:
    description:
      - The catalog entry of the service. Left out, the catalog is not read and O(endpoints) must be empty.
    type: dict
    suboptions:
      name:
        description:
          - Name of the service in the catalog.
        type: str
        required: true
      type:
        description:
          - >-
            Service type (V(image), V(compute), ...). With a type, the entry is matched by name and type, created
            when missing and its description updated when it differs, as M(openstack.cloud.catalog_service) does.
          - >-
            Without one (null or left out), the service is never created or changed, only looked up by name when
            O(endpoints) is not empty; the module then fails when there is no such service.
        type: str
      description:
        description:
          - Description of the catalog entry. Left out, an existing entry keeps its description. Ignored without
            O(service.type).
        type: str
  endpoints:
    description:
      - >-
        The endpoints of O(service), at most one per interface. An endpoint is matched by service, interface and
        O(region), as M(openstack.cloud.endpoint) matches it. A missing one is created (enabled); an existing one
        with another URL gets the URL, and a disabled one is enabled.
      - >-
        When several endpoints of the service match an interface and region: if one of them has the URL asked, it
        is kept, the others are left alone and a warning names them; if none has it, the module fails before it
        writes anything, since it cannot tell which one to change.
    type: list
    elements: dict
    default: []
    suboptions:
      interface:
        description:
          - The interface of the endpoint.
        type: str
        required: true
        choices: [public, internal, admin]
      url:
        description:
          - The URL of the endpoint, compared as a string.
        type: str
        required: true
  region:
    description:
      - >-
        Keystone region (its id) of O(endpoints); it must exist. Left out, endpoints are matched in any region and
        created without one, as M(openstack.cloud.endpoint) does.
      - This is the region of the registered endpoints, not O(region_name), the region the module connects to.
    type: str
  user:
    description:
      - >-
        The service's Keystone user, matched by name in O(user.domain). A missing user is created (enabled, with
        O(user.password) and O(user.default_project)). An existing one gets O(user.default_project) when it has
        another one and is enabled when disabled, as M(openstack.cloud.identity_user) does.
    type: dict
    suboptions:
      name:
        description:
          - Name of the user.
        type: str
        required: true
      password:
        description:
          - >-
            Password of the user, set when the user is created; for an existing user, only with
            O(user.update_password=always). It is never returned.
        type: str
      domain:
        description:
          - Domain of the user (name or id). O(user.default_project) is looked up in it too.
        type: str
        default: default
      default_project:
        description:
          - Default project of the user (name or id, in O(user.domain)). Left out, an existing user keeps its own.
        type: str
      update_password:
        description:
          - >-
            V(on_create) sends the password only to create the user. Keystone does not show a password, so the
            module cannot compare it; this keeps a re-run unchanged. Rotating a password is a separate step.
          - >-
            V(always) sends it on every run and so always reports a change. It needs O(user.password).
        type: str
        choices: [on_create, always]
        default: on_create
  roles:
    description:
      - >-
        Roles of O(user) on projects. A missing assignment is created; assignments not listed are never removed.
        Only direct assignments count (not ones through a group, implied roles, or ones inherited from a parent
        project).
      - Needs O(user) when not empty.
    type: list
    elements: dict
    default: []
    suboptions:
      role:
        description:
          - The role (name or id; a global role, not a domain-specific one).
        type: str
        required: true
      project:
        description:
          - The project (name or id) the role is given on.
        type: str
        required: true
      project_domain:
        description:
          - Domain (name or id) of O(roles[].project).
        type: str
        default: default
extends_documentation_fragment:
  - openstack.cloud.openstack
  - ansible.builtin.action_common_attributes
  - stackwright.cloud.openstack_api
attributes:
  check_mode:
    details: Runs every read and lookup, fails where a real run would fail before writing, and reports what would be
      written, without a write call.
notes:
  - >-
    Needs admin credentials (Keystone's default policy lets only admins manage the catalog, users and role
    assignments).
  - >-
    It is not in the C(openstack.cloud.openstack) action group, so C(module_defaults) of
    C(group/openstack.cloud.openstack) do not reach it: give it the connection options itself.
  - >-
    On a no-op run it makes these reads and nothing else: the list of services, the endpoints of the service, the
    user's domain, the user, each project once, the list of roles, the role assignments of the user.
seealso:
  - module: openstack.cloud.catalog_service
  - module: openstack.cloud.endpoint
  - module: openstack.cloud.identity_user
  - module: openstack.cloud.role_assignment
"""

EXAMPLES = r"""
- name: Register glance in Keystone
  stackwright.cloud.keystone_registration:
    cloud: admin
    service:
      name: glance
      type: image
      description: Image service
    endpoints:
      - interface: public
        url: https://cloud.example.com:9292
      - interface: internal
        url: https://10.0.0.10:9292
    region: RegionOne
    user:
      name: glance
      password: "{{ glance_keystone_password }}"
      default_project: service
    roles:
      - role: admin
        project: service
      - role: service
        project: service
  register: registered

- name: Show what was created or changed
  ansible.builtin.debug:
    var: registered.actions

- name: Rotate the password of the glance user (always reports a change)
  stackwright.cloud.keystone_registration:
    cloud: admin
    user:
      name: glance
      password: "{{ new_glance_keystone_password }}"
      update_password: always
"""

RETURN = r"""
actions:
  description:
    - One line per write, in the order made, for example C(created endpoint public https://cloud.example.com:9292 in
      RegionOne). In check mode, the writes that would be made. Empty when nothing changed.
    - Never holds the password.
  returned: always
  type: list
  elements: str
  sample:
    - created service glance (image)
    - created endpoint public https://cloud.example.com:9292 in RegionOne
    - "updated endpoint internal in RegionOne: url https://10.0.0.9:9292 -> https://10.0.0.10:9292"
    - created user glance in domain default
    - assigned role admin on project service to user glance
msg:
  description: A summary of what the task did, or would do in check mode.
  returned: always
  type: str
  sample: "glance: created endpoint public https://cloud.example.com:9292 in RegionOne"
service:
  description:
    - The catalog entry after the task (in check mode, as it would be).
    - Null without O(service), or without O(service.type) and O(endpoints) (then nothing is read).
  returned: always
  type: dict
  contains:
    id:
      description: Id of the service; null in check mode when it would be created.
      type: str
      sample: 0b9d0d8a5a6f4a4d9a2c1e3f5b7d9e11
    name:
      description: Name of the service.
      type: str
      sample: glance
    type:
      description: Type of the service.
      type: str
      sample: image
    description:
      description: Description of the service.
      type: str
      sample: Image service
    enabled:
      description: Whether the service is in the catalog of tokens.
      type: bool
      sample: true
endpoints:
  description: The endpoints asked for in O(endpoints), after the task (in check mode, as they would be), in that order.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Id of the endpoint; null in check mode when it would be created.
      type: str
      sample: 4a1f3c2e9b8d4e6f8a0b1c2d3e4f5a6b
    interface:
      description: V(public), V(internal) or V(admin).
      type: str
      sample: public
    region:
      description: Region id of the endpoint.
      type: str
      sample: RegionOne
    url:
      description: URL of the endpoint.
      type: str
      sample: https://cloud.example.com:9292
    enabled:
      description: Whether the endpoint is enabled.
      type: bool
      sample: true
user:
  description: The user after the task (in check mode, as it would be), without its password; null without O(user).
  returned: always
  type: dict
  contains:
    id:
      description: Id of the user; null in check mode when it would be created.
      type: str
      sample: 9c2d4e6f8a0b4c1d8e3f5a7b9c1d3e5f
    name:
      description: Name of the user.
      type: str
      sample: glance
    domain_id:
      description: Id of the user's domain.
      type: str
      sample: default
    default_project_id:
      description: Id of the user's default project.
      type: str
      sample: 2e4f6a8b0c1d4e3f9a5b7c9d1e3f5a7b
    enabled:
      description: Whether the user is enabled.
      type: bool
      sample: true
"""

from typing import ClassVar

from ansible_collections.openstack.cloud.plugins.module_utils.openstack import OpenStackModule

INTERFACES = ["public", "internal", "admin"]
# Named: ruff takes a literal compared with a *password* key for a hardcoded password (S105).
ON_CREATE = "on_create"
ALWAYS = "always"
# Keystone marks a project assignment that applies only to the subprojects so; it is no role on the project itself.
INHERITED_SCOPE = "OS-INHERIT:inherited_to"


class KeystoneRegistrationModule(OpenStackModule):
    argument_spec: ClassVar[dict] = dict(
        service=dict(
            type="dict",
            options=dict(
                name=dict(type="str", required=True),
                type=dict(type="str"),
                description=dict(type="str"),
            ),
        ),
        endpoints=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                interface=dict(type="str", required=True, choices=INTERFACES),
                url=dict(type="str", required=True),
            ),
        ),
        region=dict(type="str"),
        user=dict(
            type="dict",
            options=dict(
                name=dict(type="str", required=True),
                password=dict(type="str", no_log=True),
                domain=dict(type="str", default="default"),
                default_project=dict(type="str"),
                update_password=dict(type="str", default=ON_CREATE, choices=[ON_CREATE, ALWAYS]),
            ),
        ),
        roles=dict(
            type="list",
            elements="dict",
            default=[],
            options=dict(
                role=dict(type="str", required=True),
                project=dict(type="str", required=True),
                project_domain=dict(type="str", default="default"),
            ),
        ),
    )
    module_kwargs: ClassVar[dict] = dict(supports_check_mode=True)

    def run(self):
        self.validate()
        self.domains, self.projects = {}, {}
        # Planned writes, in order: (what was done, what to do, callable). Creations fill in the ids of the records
        # that later writes read, so endpoints of a new service and roles of a new user need no second lookup.
        self.steps = []
        service = self.plan_service()
        endpoints = self.plan_endpoints(service)
        user = self.plan_user()
        self.plan_roles(user)

        subject = (self.params["service"] or self.params["user"] or {}).get("name", "keystone")
        result = dict(service=service, endpoints=endpoints, user=user)
        if not self.steps:
            self.exit_json(changed=False, actions=[], msg=f"{subject}: already registered as asked", **result)
        if self.check_mode:
            self.exit_json(
                changed=True,
                actions=[done for done, _todo, _write in self.steps],
                msg=f"{subject}: would " + ", ".join(todo for _done, todo, _write in self.steps),
                **result,
            )

        actions = []
        for done, todo, write in self.steps:
            try:
                write()
            except self.sdk.exceptions.SDKException as error:
                self.fail_json(
                    msg=f"{subject}: could not {todo}: {error}"
                    + (f" (done before: {', '.join(actions)})" if actions else ""),
                    changed=bool(actions),
                    actions=actions,
                    **result,
                )
            actions.append(done)
        self.exit_json(changed=True, actions=actions, msg=f"{subject}: " + ", ".join(actions), **result)

    def validate(self):
        params = self.params
        if params["endpoints"] and not params["service"]:
            self.fail_json(msg="endpoints need service (at least its name)")
        if params["roles"] and not params["user"]:
            self.fail_json(msg="roles are given to a user: give user too")
        interfaces = [endpoint["interface"] for endpoint in params["endpoints"]]
        repeated = sorted({interface for interface in interfaces if interfaces.count(interface) > 1})
        if repeated:
            self.fail_json(msg=f"endpoints: one URL per interface; {', '.join(repeated)} given more than once")
        user = params["user"]
        if user and user["update_password"] == ALWAYS and user["password"] is None:
            self.fail_json(msg="user.update_password is 'always' but user.password is missing")

    def step(self, done, todo, write):
        self.steps.append((done, todo, write))

    # Lookups, each made once per run.

    def domain_id(self, name_or_id):
        if name_or_id not in self.domains:
            domain = self.conn.identity.find_domain(name_or_id, ignore_missing=True)
            if domain is None:
                self.fail_json(msg=f"keystone has no domain {name_or_id!r}")
            self.domains[name_or_id] = domain.id
        return self.domains[name_or_id]

    def project_id(self, name_or_id, domain):
        domain_id = self.domain_id(domain)
        key = (name_or_id, domain_id)
        if key not in self.projects:
            # By name first: one list call, where find_project tries the value as an id first.
            found = list(self.conn.identity.projects(name=name_or_id, domain_id=domain_id))
            if not found:
                project = self.conn.identity.find_project(name_or_id, ignore_missing=True, domain_id=domain_id)
                found = [project] if project is not None else []
            if not found:
                self.fail_json(msg=f"keystone has no project {name_or_id!r} in domain {domain!r}")
            self.projects[key] = found[0].id
        return self.projects[key]

    # Catalog entry and endpoints.

    def plan_service(self):
        spec = self.params["service"]
        if spec is None:
            return None
        name, service_type, description = spec["name"], spec["type"], spec["description"]
        if service_type is None and not self.params["endpoints"]:
            # Nothing to create and nothing that needs its id: no read.
            return None
        label = f"{name} ({service_type})" if service_type else name
        found = [
            service
            for service in self.conn.identity.services()
            if service.name == name and (service_type is None or service.type == service_type)
        ]
        if len(found) > 1:
            ids = ", ".join(str(service.id) for service in found)
            self.fail_json(msg=f"the catalog has {len(found)} services {label} ({ids}); delete the extra ones")

        if not found:
            if service_type is None:
                self.fail_json(msg=f"the catalog has no service named {name!r}; give service.type to create it")
            record = dict(id=None, name=name, type=service_type, description=description, enabled=True)

            def create():
                attrs = dict(name=name, type=service_type)
                if description is not None:
                    attrs["description"] = description
                record["id"] = self.conn.identity.create_service(**attrs).id

            self.step(f"created service {label}", f"create service {label}", create)
            return record

        service = found[0]
        record = dict(
            id=service.id,
            name=service.name,
            type=service.type,
            description=service.description,
            enabled=service.is_enabled,
        )
        # None and "" are the same empty description; comparing them would report a change on every run.
        if service_type and description is not None and description != (service.description or ""):
            record["description"] = description
            self.step(
                f"updated description of service {label}",
                f"update the description of service {label}",
                lambda: self.conn.identity.update_service(service.id, description=description),
            )
        return record

    def plan_endpoints(self, service):
        wanted, region = self.params["endpoints"], self.params["region"]
        if not wanted:
            return []
        # A service that is still to be created has no endpoints: no read.
        existing = [] if service["id"] is None else list(self.conn.identity.endpoints(service_id=service["id"]))
        where = f" in {region}" if region else ""
        records = []
        for endpoint in wanted:
            interface, url = endpoint["interface"], endpoint["url"]
            matching = [
                found
                for found in existing
                if found.service_id == service["id"]
                and found.interface == interface
                and (region is None or found.region_id == region)
            ]
            if not matching:
                records.append(self.plan_endpoint_create(service, interface, url, region, where))
                continue
            current = matching[0]
            if len(matching) > 1:
                current = self.pick_duplicate(matching, interface, url, where)
            records.append(self.plan_endpoint_update(current, interface, url, where))
        return records

    def pick_duplicate(self, matching, interface, url, where):
        """Of several endpoints of one interface and region, the one with the URL asked (an enabled one first).
        Fails when none has it: changing one of them would leave the other, stale, URL in the catalog."""
        listed = ", ".join(f"{found.id} {found.url}" for found in matching)
        same = sorted((found for found in matching if found.url == url), key=lambda found: not found.is_enabled)
        if not same:
            self.fail_json(
                msg=f"the service has {len(matching)} {interface} endpoints{where} ({listed}) and none has the URL "
                f"{url}; delete the wrong ones (openstack endpoint delete <id>) and run again"
            )
        others = ", ".join(f"{found.id} {found.url}" for found in matching if found is not same[0])
        self.warn(
            f"the service has more {interface} endpoints{where} than the one with {url}: {others}. They were left "
            "as they are; clients may pick any of them, so delete the extra ones."
        )
        return same[0]

    def plan_endpoint_create(self, service, interface, url, region, where):
        record = dict(id=None, interface=interface, region=region, url=url, enabled=True)

        def create():
            attrs = dict(service_id=service["id"], interface=interface, url=url, is_enabled=True)
            if region is not None:
                attrs["region_id"] = region
            record["id"] = self.conn.identity.create_endpoint(**attrs).id

        self.step(f"created endpoint {interface} {url}{where}", f"create endpoint {interface} {url}{where}", create)
        return record

    def plan_endpoint_update(self, current, interface, url, where):
        record = dict(
            id=current.id, interface=interface, region=current.region_id, url=current.url, enabled=current.is_enabled
        )
        attrs, changes = {}, []
        if current.url != url:
            attrs["url"] = url
            changes.append(f"url {current.url} -> {url}")
        # "is False": keystone always says; a missing flag must not turn into a write on every run.
        if current.is_enabled is False:
            attrs["is_enabled"] = True
            changes.append("enabled")
        if attrs:
            record.update(url=url, enabled=True)
            self.step(
                f"updated endpoint {interface}{where}: {', '.join(changes)}",
                f"update endpoint {interface}{where} ({', '.join(changes)})",
                # By id: the SDK would send only attributes that differ from a resource it read.
                lambda: self.conn.identity.update_endpoint(current.id, **attrs),
            )
        return record

    # User and roles.

    def plan_user(self):
        spec = self.params["user"]
        if spec is None:
            return None
        name, domain, password = spec["name"], spec["domain"], spec["password"]
        domain_id = self.domain_id(domain)
        project_id = None
        if spec["default_project"] is not None:
            project_id = self.project_id(spec["default_project"], domain)
        found = [user for user in self.conn.identity.users(name=name, domain_id=domain_id) if user.name == name]

        if not found:
            record = dict(id=None, name=name, domain_id=domain_id, default_project_id=project_id, enabled=True)

            def create():
                attrs = dict(name=name, domain_id=domain_id, is_enabled=True)
                if project_id is not None:
                    attrs["default_project_id"] = project_id
                if password is not None:
                    attrs["password"] = password
                record["id"] = self.conn.identity.create_user(**attrs).id

            self.step(f"created user {name} in domain {domain}", f"create user {name} in domain {domain}", create)
            return record

        user = found[0]
        record = dict(
            id=user.id,
            name=user.name,
            domain_id=user.domain_id,
            default_project_id=user.default_project_id,
            enabled=user.is_enabled,
        )
        attrs, changes = {}, []
        if project_id is not None and user.default_project_id != project_id:
            attrs["default_project_id"] = project_id
            changes.append(f"default project {spec['default_project']}")
        if user.is_enabled is False:
            attrs["is_enabled"] = True
            changes.append("enabled")
        # Keystone never shows a password: with on_create an existing user's password is not even sent.
        if spec["update_password"] == ALWAYS:
            attrs["password"] = password
            changes.append("password")
        if attrs:
            record["default_project_id"] = attrs.get("default_project_id", record["default_project_id"])
            record["enabled"] = True
            self.step(
                f"updated user {name}: {', '.join(changes)}",
                f"update user {name} ({', '.join(changes)})",
                lambda: self.conn.identity.update_user(user.id, **attrs),
            )
        return record

    def plan_roles(self, user):
        wanted = self.params["roles"]
        if not wanted:
            return
        roles = list(self.conn.identity.roles())
        pairs = []
        for assignment in wanted:
            role = assignment["role"]
            found = [known for known in roles if role in (known.name, known.id)]
            if not found:
                self.fail_json(msg=f"keystone has no role {role!r}")
            project_id = self.project_id(assignment["project"], assignment["project_domain"])
            pair = (found[0].id, project_id)
            if pair not in [known for known, _label in pairs]:
                pairs.append((pair, f"role {role} on project {assignment['project']}"))

        # One read for all of them; a user that is still to be created has no roles.
        held = set()
        if user["id"] is not None:
            for assignment in self.conn.identity.role_assignments(user_id=user["id"]):
                scope = assignment.scope or {}
                project = scope.get("project")
                if project and INHERITED_SCOPE not in scope:
                    held.add(((assignment.role or {}).get("id"), project.get("id")))

        for (role_id, project_id), label in pairs:
            if (role_id, project_id) in held:
                continue
            self.step(
                f"assigned {label} to user {user['name']}",
                f"assign {label} to user {user['name']}",
                lambda role_id=role_id, project_id=project_id: self.conn.identity.assign_project_role_to_user(
                    project_id, user["id"], role_id
                ),
            )


def main():
    module = KeystoneRegistrationModule()
    module()


if __name__ == "__main__":
    main()

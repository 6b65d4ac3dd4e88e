# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.keystone_registration against a fake identity proxy that answers as keystone does after
keystone-manage bootstrap plus the service project and the service role, as the keystone role leaves it."""

import json
from types import SimpleNamespace

import openstack
import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import keystone_registration
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from openstack.identity.v3.domain import Domain
from openstack.identity.v3.endpoint import Endpoint
from openstack.identity.v3.project import Project
from openstack.identity.v3.role import Role
from openstack.identity.v3.role_assignment import RoleAssignment
from openstack.identity.v3.service import Service
from openstack.identity.v3.user import User

# Every Resource openstacksdk 4.x builds warns so; the fake builds them as the SDK does.
pytestmark = pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated")

PASSWORD = "s3cret-Gl4nce-pw"  # noqa: S105 (a test value, looked for in the results)
PUBLIC = "https://cloud.example.com:9292"
INTERNAL = "https://10.0.0.10:9292"
SERVICE_PROJECT = "p-service"
ADMIN_PROJECT = "p-admin"
ADMIN_ROLE, SERVICE_ROLE, MEMBER_ROLE = "r-admin", "r-service", "r-member"

GLANCE = dict(name="glance", type="image", description="Image service")
ENDPOINTS = [dict(interface="public", url=PUBLIC), dict(interface="internal", url=INTERNAL)]
USER = dict(name="glance", password=PASSWORD, default_project="service", domain="default")
ROLES = [dict(role="admin", project="service"), dict(role="service", project="service")]
FULL = dict(service=GLANCE, endpoints=ENDPOINTS, region="RegionOne", user=USER, roles=ROLES)


class FakeIdentity:
    """The identity proxy of a connection: reads answer from the records, writes are recorded and applied. It has
    only the calls the module is meant to make (find_service, find_user and the like would raise)."""

    def __init__(self):
        self.domain_records = {"default": {"id": "default", "name": "Default"}}
        self.project_records = {
            ADMIN_PROJECT: {"id": ADMIN_PROJECT, "name": "admin", "domain_id": "default"},
            SERVICE_PROJECT: {"id": SERVICE_PROJECT, "name": "service", "domain_id": "default"},
        }
        self.role_records = {
            ADMIN_ROLE: {"id": ADMIN_ROLE, "name": "admin"},
            SERVICE_ROLE: {"id": SERVICE_ROLE, "name": "service"},
            MEMBER_ROLE: {"id": MEMBER_ROLE, "name": "member"},
        }
        self.service_records = {
            "s-keystone": {"id": "s-keystone", "name": "keystone", "type": "identity", "enabled": True}
        }
        self.endpoint_records = {
            "e-keystone": {"id": "e-keystone", "service_id": "s-keystone", "interface": "public",
                           "region_id": "RegionOne", "url": "https://cloud.example.com:5000", "enabled": True},
        }  # fmt: skip
        self.user_records = {"u-admin": {"id": "u-admin", "name": "admin", "domain_id": "default", "enabled": True}}
        # (user id, role id, project id, inherited)
        self.assignments = [("u-admin", ADMIN_ROLE, ADMIN_PROJECT, False)]
        self.reads = []
        self.writes = []
        self.fail_on = None
        self.serial = 0

    def new_id(self, prefix):
        self.serial += 1
        return f"{prefix}-new{self.serial}"

    def write(self, call, *args, **attrs):
        self.writes.append((call, *args, attrs))
        if call == self.fail_on:
            raise openstack.exceptions.BadRequestException(message=f"{call} refused")

    @staticmethod
    def select(records, query):
        return [record for record in records.values() if all(record.get(k) == v for k, v in query.items())]

    # Reads.

    def find_domain(self, name_or_id, ignore_missing=True):
        self.reads.append(("find_domain", name_or_id))
        for record in self.domain_records.values():
            if name_or_id in (record["id"], record["name"]):
                return Domain(**record)
        assert ignore_missing
        return None

    def services(self, **query):
        assert not query, "the catalog is listed once, whole"
        self.reads.append(("services", query))
        return (Service(**record) for record in self.service_records.values())

    def endpoints(self, **query):
        assert set(query) <= {"service_id", "interface", "region_id"}
        self.reads.append(("endpoints", query))
        return (Endpoint(**record) for record in self.select(self.endpoint_records, query))

    def users(self, **query):
        assert set(query) == {"name", "domain_id"}
        self.reads.append(("users", query))
        return (User(**record) for record in self.select(self.user_records, query))

    def projects(self, **query):
        self.reads.append(("projects", query))
        return (Project(**record) for record in self.select(self.project_records, query))

    def find_project(self, name_or_id, ignore_missing=True, **query):
        self.reads.append(("find_project", name_or_id))
        record = self.project_records.get(name_or_id)
        if record is None or any(record.get(k) != v for k, v in query.items()):
            assert ignore_missing
            return None
        return Project(**record)

    def roles(self, **query):
        assert not query
        self.reads.append(("roles", query))
        return (Role(**record) for record in self.role_records.values())

    def role_assignments(self, **query):
        assert set(query) == {"user_id"}
        self.reads.append(("role_assignments", query))
        for user_id, role_id, project_id, inherited in self.assignments:
            if user_id == query["user_id"]:
                scope = {"project": {"id": project_id}}
                if inherited:
                    scope["OS-INHERIT:inherited_to"] = "projects"
                yield RoleAssignment(role={"id": role_id}, user={"id": user_id}, scope=scope)

    # Writes.

    def create_service(self, **attrs):
        self.write("create_service", **attrs)
        record = {"id": self.new_id("s"), "enabled": True, **attrs}
        self.service_records[record["id"]] = record
        return Service(**record)

    def update_service(self, service, **attrs):
        assert isinstance(service, str)
        self.write("update_service", service, **attrs)
        self.service_records[service].update(attrs)
        return Service(**self.service_records[service])

    def create_endpoint(self, **attrs):
        self.write("create_endpoint", **attrs)
        record = {"id": self.new_id("e"), **attrs}
        record["enabled"] = record.pop("is_enabled")
        self.endpoint_records[record["id"]] = record
        return Endpoint(**record)

    def update_endpoint(self, endpoint, **attrs):
        assert isinstance(endpoint, str), "update by id, or the SDK leaves out what it thinks unchanged"
        self.write("update_endpoint", endpoint, **attrs)
        record = self.endpoint_records[endpoint]
        record.update(attrs)
        if "is_enabled" in attrs:
            record["enabled"] = record.pop("is_enabled")
        return Endpoint(**record)

    def create_user(self, **attrs):
        self.write("create_user", **attrs)
        record = {"id": self.new_id("u"), **attrs}
        record["enabled"] = record.pop("is_enabled")
        record.pop("password", None)
        self.user_records[record["id"]] = record
        return User(**record)

    def update_user(self, user, **attrs):
        assert isinstance(user, str)
        self.write("update_user", user, **attrs)
        record = self.user_records[user]
        record.update({k: v for k, v in attrs.items() if k not in ("password", "is_enabled")})
        if "is_enabled" in attrs:
            record["enabled"] = attrs["is_enabled"]
        return User(**record)

    def assign_project_role_to_user(self, project, user, role):
        assert all(isinstance(value, str) for value in (project, user, role))
        self.write("assign_project_role_to_user", project, user, role)
        self.assignments.append((user, role, project, False))


@pytest.fixture
def keystone(monkeypatch):
    identity = FakeIdentity()
    conn = SimpleNamespace(identity=identity, connect_kwargs=None)

    def connect(**kwargs):
        conn.connect_kwargs = kwargs
        return conn

    patch_module(monkeypatch, identity)
    monkeypatch.setattr(openstack, "connect", connect)
    identity.conn = conn
    return identity


def registered(keystone):
    """Glance as a first run leaves it."""
    keystone.service_records["s-glance"] = dict(
        id="s-glance", name="glance", type="image", description="Image service", enabled=True
    )
    for interface, url in (("public", PUBLIC), ("internal", INTERNAL)):
        keystone.endpoint_records[f"e-{interface}"] = dict(
            id=f"e-{interface}",
            service_id="s-glance",
            interface=interface,
            region_id="RegionOne",
            url=url,
            enabled=True,
        )
    keystone.user_records["u-glance"] = dict(
        id="u-glance", name="glance", domain_id="default", default_project_id=SERVICE_PROJECT, enabled=True
    )
    keystone.assignments += [
        ("u-glance", ADMIN_ROLE, SERVICE_PROJECT, False),
        ("u-glance", SERVICE_ROLE, SERVICE_PROJECT, False),
    ]


def run_module(**args):
    with patch_module_args({"cloud": "admin", **args}), pytest.raises((Exited, Failed)) as caught:
        keystone_registration.main()
    return caught.value


def succeed(**args):
    outcome = run_module(**args)
    assert isinstance(outcome, Exited), outcome.result
    return outcome.result


def refuse(keystone, **args):
    outcome = run_module(**args)
    assert isinstance(outcome, Failed), outcome.result
    assert keystone.writes == [], "a refusal writes nothing"
    return outcome.result["msg"]


def write_calls(keystone):
    return [write[0] for write in keystone.writes]


def test_everything_missing_is_created(keystone):
    result = succeed(**FULL)
    assert result["changed"] is True
    assert keystone.writes == [
        ("create_service", {"name": "glance", "type": "image", "description": "Image service"}),
        ("create_endpoint", {"service_id": "s-new1", "interface": "public", "url": PUBLIC, "region_id": "RegionOne",
                             "is_enabled": True}),
        ("create_endpoint", {"service_id": "s-new1", "interface": "internal", "url": INTERNAL,
                             "region_id": "RegionOne", "is_enabled": True}),
        ("create_user", {"name": "glance", "domain_id": "default", "is_enabled": True,
                         "default_project_id": SERVICE_PROJECT, "password": PASSWORD}),
        ("assign_project_role_to_user", SERVICE_PROJECT, "u-new4", ADMIN_ROLE, {}),
        ("assign_project_role_to_user", SERVICE_PROJECT, "u-new4", SERVICE_ROLE, {}),
    ]  # fmt: skip
    assert result["actions"] == [
        "created service glance (image)",
        f"created endpoint public {PUBLIC} in RegionOne",
        f"created endpoint internal {INTERNAL} in RegionOne",
        "created user glance in domain default",
        "assigned role admin on project service to user glance",
        "assigned role service on project service to user glance",
    ]
    assert result["service"]["id"] == "s-new1"
    assert [endpoint["id"] for endpoint in result["endpoints"]] == ["e-new2", "e-new3"]
    assert result["user"] == dict(
        id="u-new4", name="glance", domain_id="default", default_project_id=SERVICE_PROJECT, enabled=True
    )
    assert keystone.conn.connect_kwargs["cloud"] == "admin"
    # Nothing to read of a service or a user that did not exist yet.
    assert [read[0] for read in keystone.reads] == ["services", "find_domain", "projects", "users", "roles"]


def test_everything_present_is_unchanged_and_writes_nothing(keystone):
    registered(keystone)
    result = succeed(**FULL)
    assert result["changed"] is False
    assert result["actions"] == []
    assert keystone.writes == []
    assert result["msg"] == "glance: already registered as asked"
    assert result["service"] == dict(
        id="s-glance", name="glance", type="image", description="Image service", enabled=True
    )
    assert [endpoint["id"] for endpoint in result["endpoints"]] == ["e-public", "e-internal"]
    # Each list read once, not once per endpoint or role; "default" and "service" looked up once.
    assert keystone.reads == [
        ("services", {}),
        ("endpoints", {"service_id": "s-glance"}),
        ("find_domain", "default"),
        ("projects", {"name": "service", "domain_id": "default"}),
        ("users", {"name": "glance", "domain_id": "default"}),
        ("roles", {}),
        ("role_assignments", {"user_id": "u-glance"}),
    ]


def test_a_wrong_endpoint_url_is_updated(keystone):
    registered(keystone)
    keystone.endpoint_records["e-internal"]["url"] = "https://10.0.0.9:9292"
    result = succeed(**FULL)
    assert result["changed"] is True
    assert keystone.writes == [("update_endpoint", "e-internal", {"url": INTERNAL})]
    assert result["actions"] == [f"updated endpoint internal in RegionOne: url https://10.0.0.9:9292 -> {INTERNAL}"]
    assert result["endpoints"][1] == dict(
        id="e-internal", interface="internal", region="RegionOne", url=INTERNAL, enabled=True
    )


def test_a_disabled_endpoint_is_enabled(keystone):
    registered(keystone)
    keystone.endpoint_records["e-public"]["enabled"] = False
    result = succeed(**FULL)
    assert keystone.writes == [("update_endpoint", "e-public", {"is_enabled": True})]
    assert result["actions"] == ["updated endpoint public in RegionOne: enabled"]


def test_a_missing_endpoint_of_an_existing_service_is_created(keystone):
    registered(keystone)
    del keystone.endpoint_records["e-internal"]
    succeed(**FULL)
    assert keystone.writes == [
        ("create_endpoint", {"service_id": "s-glance", "interface": "internal", "url": INTERNAL,
                             "region_id": "RegionOne", "is_enabled": True}),
    ]  # fmt: skip


def test_an_endpoint_in_another_region_does_not_count(keystone):
    registered(keystone)
    keystone.endpoint_records["e-internal"]["region_id"] = "RegionTwo"
    succeed(**FULL)
    assert write_calls(keystone) == ["create_endpoint"]
    assert keystone.endpoint_records["e-internal"]["url"] == INTERNAL, "the other region's endpoint is left alone"


def test_without_region_an_endpoint_of_any_region_matches(keystone):
    registered(keystone)
    keystone.endpoint_records["e-internal"]["region_id"] = "RegionTwo"
    result = succeed(**{**FULL, "region": None})
    assert result["changed"] is False
    assert result["endpoints"][1]["region"] == "RegionTwo"


def test_other_interfaces_of_the_service_are_left_alone(keystone):
    registered(keystone)
    keystone.endpoint_records["e-admin"] = {
        **keystone.endpoint_records["e-internal"],
        "id": "e-admin",
        "interface": "admin",
        "url": "https://old:9292",
    }
    assert succeed(**FULL)["changed"] is False
    assert keystone.writes == []


def test_a_duplicate_endpoint_beside_the_right_one_is_left_alone_with_a_warning(keystone, monkeypatch):
    registered(keystone)
    keystone.endpoint_records["e-stale"] = {
        **keystone.endpoint_records["e-internal"],
        "id": "e-stale",
        "url": "https://old:9292",
    }
    # Ansible's warning list is process-wide and other tests' modules consume it: record this module's warnings.
    warned = []
    monkeypatch.setattr(basic.AnsibleModule, "warn", lambda _self, message: warned.append(message))
    result = succeed(**FULL)
    assert result["changed"] is False
    assert keystone.writes == []
    assert len(warned) == 1
    assert "e-stale https://old:9292" in warned[0]


def test_duplicate_endpoints_without_the_right_url_fail_before_any_write(keystone):
    registered(keystone)
    keystone.endpoint_records["e-internal"]["url"] = "https://a:9292"
    keystone.endpoint_records["e-stale"] = {
        **keystone.endpoint_records["e-internal"],
        "id": "e-stale",
        "url": "https://b:9292",
    }
    keystone.user_records["u-glance"]["enabled"] = False  # a write that would come later
    msg = refuse(keystone, **FULL)
    assert "2 internal endpoints in RegionOne" in msg
    assert "e-internal https://a:9292, e-stale https://b:9292" in msg


def test_a_new_description_is_updated(keystone):
    registered(keystone)
    keystone.service_records["s-glance"]["description"] = "Glance"
    result = succeed(**FULL)
    assert keystone.writes == [("update_service", "s-glance", {"description": "Image service"})]
    assert result["actions"] == ["updated description of service glance (image)"]
    assert result["service"]["description"] == "Image service"


def test_no_description_asked_keeps_the_one_there(keystone):
    registered(keystone)
    keystone.service_records["s-glance"]["description"] = "Glance"
    assert succeed(**{**FULL, "service": {"name": "glance", "type": "image"}})["changed"] is False


def test_a_service_of_the_same_name_and_another_type_is_not_it(keystone):
    keystone.service_records["s-other"] = {"id": "s-other", "name": "glance", "type": "image-v1", "enabled": True}
    succeed(**FULL)
    assert write_calls(keystone)[0] == "create_service"


def test_without_type_the_service_is_only_looked_up(keystone):
    registered(keystone)
    del keystone.endpoint_records["e-public"]
    result = succeed(**{**FULL, "service": {"name": "glance", "type": None, "description": "ignored"}})
    assert write_calls(keystone) == ["create_endpoint"]
    assert result["service"]["description"] == "Image service"


def test_without_type_a_missing_service_fails(keystone):
    assert "give service.type" in refuse(keystone, **{**FULL, "service": {"name": "glance"}})


def test_without_type_and_endpoints_the_service_is_not_read(keystone):
    result = succeed(service={"name": "memcached", "type": None, "description": "Cache"}, endpoints=[])
    assert result["changed"] is False
    assert result["service"] is None
    assert keystone.reads == []


def test_duplicate_services_fail(keystone):
    registered(keystone)
    keystone.service_records["s-dup"] = {**keystone.service_records["s-glance"], "id": "s-dup"}
    assert "2 services glance (image)" in refuse(keystone, **FULL)


def test_check_mode_reports_everything_and_writes_nothing(keystone):
    result = succeed(**FULL, _ansible_check_mode=True)
    assert result["changed"] is True
    assert keystone.writes == []
    assert len(result["actions"]) == 6
    assert result["actions"][0] == "created service glance (image)"
    assert result["msg"].startswith("glance: would create service glance (image), create endpoint public")
    assert result["service"]["id"] is None
    assert result["user"]["id"] is None
    assert keystone.service_records.keys() == {"s-keystone"}


def test_check_mode_with_a_wrong_url_writes_nothing(keystone):
    registered(keystone)
    keystone.endpoint_records["e-public"]["url"] = "https://old:9292"
    result = succeed(**FULL, _ansible_check_mode=True)
    assert result["changed"] is True
    assert keystone.writes == []
    assert result["actions"] == [f"updated endpoint public in RegionOne: url https://old:9292 -> {PUBLIC}"]
    assert keystone.endpoint_records["e-public"]["url"] == "https://old:9292"


def test_check_mode_when_registered_is_unchanged(keystone):
    registered(keystone)
    assert succeed(**FULL, _ansible_check_mode=True)["changed"] is False


def test_on_create_never_sends_the_password_of_an_existing_user(keystone):
    registered(keystone)
    keystone.user_records["u-glance"]["default_project_id"] = ADMIN_PROJECT
    keystone.user_records["u-glance"]["enabled"] = False
    result = succeed(**FULL)
    assert keystone.writes == [
        ("update_user", "u-glance", {"default_project_id": SERVICE_PROJECT, "is_enabled": True}),
    ]
    assert result["actions"] == ["updated user glance: default project service, enabled"]
    assert PASSWORD not in json.dumps(keystone.writes)


def test_on_create_with_an_existing_user_as_asked_is_unchanged(keystone):
    registered(keystone)
    result = succeed(**{**FULL, "user": {**USER, "password": "another-one"}})
    assert result["changed"] is False
    assert keystone.writes == []


def test_always_sends_the_password_again(keystone):
    registered(keystone)
    result = succeed(**{**FULL, "user": {**USER, "update_password": "always"}})
    assert result["changed"] is True
    assert keystone.writes == [("update_user", "u-glance", {"password": PASSWORD})]
    assert result["actions"] == ["updated user glance: password"]


def test_always_without_a_password_fails(keystone):
    user = {key: value for key, value in USER.items() if key != "password"}
    assert "password is missing" in refuse(keystone, user={**user, "update_password": "always"})


def test_a_user_without_a_password_is_created_without_one(keystone):
    succeed(user={"name": "glance"})
    assert keystone.writes == [("create_user", {"name": "glance", "domain_id": "default", "is_enabled": True})]


@pytest.mark.parametrize("update_password", ["on_create", "always"])
@pytest.mark.parametrize("existing", [False, True])
def test_the_password_is_never_in_the_result(keystone, update_password, existing):
    if existing:
        registered(keystone)
    result = succeed(**{**FULL, "user": {**USER, "update_password": update_password}})
    assert result["changed"] is (not existing or update_password == keystone_registration.ALWAYS)
    assert PASSWORD not in json.dumps(result)


def test_the_password_is_a_no_log_value(keystone):
    # What makes Ansible mask it in the invocation and any output of the task.
    with patch_module_args({"cloud": "admin", **FULL}):
        module = keystone_registration.KeystoneRegistrationModule()
    assert PASSWORD in module.ansible.no_log_values


def test_the_password_is_not_in_a_failure(keystone):
    keystone.fail_on = "create_user"
    outcome = run_module(**FULL)
    assert isinstance(outcome, Failed)
    assert PASSWORD not in json.dumps(outcome.result)


def test_only_missing_roles_are_assigned_and_others_kept(keystone):
    registered(keystone)
    keystone.assignments.remove(("u-glance", SERVICE_ROLE, SERVICE_PROJECT, False))
    keystone.assignments.append(("u-glance", MEMBER_ROLE, ADMIN_PROJECT, False))
    result = succeed(**FULL)
    assert keystone.writes == [("assign_project_role_to_user", SERVICE_PROJECT, "u-glance", SERVICE_ROLE, {})]
    assert result["actions"] == ["assigned role service on project service to user glance"]
    assert ("u-glance", MEMBER_ROLE, ADMIN_PROJECT, False) in keystone.assignments


def test_an_inherited_assignment_is_not_a_role_on_the_project(keystone):
    registered(keystone)
    keystone.assignments.remove(("u-glance", ADMIN_ROLE, SERVICE_PROJECT, False))
    keystone.assignments.append(("u-glance", ADMIN_ROLE, SERVICE_PROJECT, True))
    succeed(**FULL)
    assert keystone.writes == [("assign_project_role_to_user", SERVICE_PROJECT, "u-glance", ADMIN_ROLE, {})]


def test_roles_and_projects_by_id(keystone):
    registered(keystone)
    result = succeed(**{**FULL, "roles": [{"role": ADMIN_ROLE, "project": SERVICE_PROJECT}]})
    assert result["changed"] is False
    assert ("find_project", SERVICE_PROJECT) in keystone.reads


def test_a_missing_role_fails_before_any_write(keystone):
    assert "no role 'reader'" in refuse(keystone, **{**FULL, "roles": [{"role": "reader", "project": "service"}]})


def test_a_missing_project_fails_before_any_write(keystone):
    msg = refuse(keystone, **{**FULL, "roles": [{"role": "admin", "project": "services"}]})
    assert "no project 'services' in domain 'default'" in msg


def test_a_missing_domain_fails(keystone):
    assert "no domain 'heat'" in refuse(keystone, **{**FULL, "user": {**USER, "domain": "heat"}})


def test_endpoints_need_a_service(keystone):
    assert "endpoints need service" in refuse(keystone, endpoints=ENDPOINTS)


def test_roles_need_a_user(keystone):
    assert "give user too" in refuse(keystone, roles=ROLES)


def test_an_interface_given_twice_fails(keystone):
    endpoints = [*ENDPOINTS, dict(interface="public", url="https://other:9292")]
    assert "public given more than once" in refuse(keystone, service=GLANCE, endpoints=endpoints)


def test_empty_lists_need_nothing(keystone):
    result = succeed(service=None, endpoints=[], user=None, roles=[])
    assert result["changed"] is False
    assert keystone.reads == []


def test_without_region_an_endpoint_is_created_without_one(keystone):
    succeed(service=GLANCE, endpoints=ENDPOINTS[:1])
    assert keystone.writes[1] == (
        "create_endpoint",
        {"service_id": "s-new1", "interface": "public", "url": PUBLIC, "is_enabled": True},
    )


def test_a_refused_write_fails_with_what_was_done(keystone):
    keystone.fail_on = "create_user"
    outcome = run_module(**FULL)
    assert isinstance(outcome, Failed)
    result = outcome.result
    assert result["changed"] is True
    assert result["actions"] == [
        "created service glance (image)",
        f"created endpoint public {PUBLIC} in RegionOne",
        f"created endpoint internal {INTERNAL} in RegionOne",
    ]
    assert result["msg"].startswith("glance: could not create user glance in domain default: ")
    assert "assign_project_role_to_user" not in write_calls(keystone)

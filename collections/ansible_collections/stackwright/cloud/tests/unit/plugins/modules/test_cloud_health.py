# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""stackwright.cloud.cloud_health against a fake openstacksdk connection to an all-in-one cloud: the token's catalog,
nova services, neutron (OVN) agents, cinder services, and the session that probes the endpoints."""

import time
from types import SimpleNamespace

import openstack
import pytest
from ansible.module_utils.testing import patch_module_args
from ansible_collections.stackwright.cloud.plugins.modules import cloud_health
from ansible_collections.stackwright.cloud.tests.unit.module_harness import Exited, Failed, patch_module
from keystoneauth1 import exceptions as ksa_exceptions

PUBLIC = "https://10.89.84.251"
INTERNAL = "https://10.89.84.250"
PROJECT = "4f6e0b1d2c3a4e5f8a9b0c1d2e3f4a5b"


def catalog_service(service_type, name, path, port, admin=False):
    interfaces = [("public", PUBLIC), ("internal", INTERNAL)] + ([("admin", INTERNAL)] if admin else [])
    return {
        "type": service_type,
        "name": name,
        "id": f"{name}-id",
        "endpoints": [
            {"id": f"{name}-{interface}", "interface": interface, "region": "RegionOne", "region_id": "RegionOne",
             "url": f"{base}:{port}{path}"}
            for interface, base in interfaces
        ],
    }  # fmt: skip


def nova_service(binary, host, state="up", status="enabled", disabled_reason=None, forced_down=False):
    return SimpleNamespace(
        id=f"{binary}-{host}",
        binary=binary,
        host=host,
        state=state,
        status=status,
        disabled_reason=disabled_reason,
        is_forced_down=forced_down,
        availability_zone="nova" if binary == "nova-compute" else "internal",
        updated_at="2026-05-09T10:41:07.000000",
    )


def neutron_agent(binary, agent_type, host, alive=True, admin_state_up=True):
    return SimpleNamespace(
        id=f"{binary}-{host}",
        binary=binary,
        agent_type=agent_type,
        host=host,
        is_alive=alive,
        is_admin_state_up=admin_state_up,
        availability_zone=None,
        last_heartbeat_at="2026-05-09 10:40:55",
    )


def cinder_service(binary, host, state="up", status="enabled", disabled_reason=None):
    return SimpleNamespace(
        binary=binary,
        host=host,
        state=state,
        status=status,
        disabled_reason=disabled_reason,
        availability_zone="nova",
        updated_at="2026-05-09T10:41:05.000000",
    )


class FakeCloud:
    """A connection as openstack.connect returns it, with only the read calls the module may make. Any other call
    (an update, a delete, a POST) is an AttributeError or an AssertionError: the module must write nothing."""

    def __init__(self):
        self.service_catalog = [
            catalog_service("identity", "keystone", "/v3", 5000, admin=True),
            catalog_service("image", "glance", "", 9292),
            catalog_service("placement", "placement", "", 8778),
            catalog_service("compute", "nova", "/v2.1", 8774),
            catalog_service("network", "neutron", "", 9696),
            catalog_service("block-storage", "cinderv3", f"/v3/{PROJECT}", 8776),
        ]
        self.nova = [
            nova_service("nova-conductor", "ctl1"),
            nova_service("nova-scheduler", "ctl1"),
            nova_service("nova-compute", "cmp1"),
            nova_service("nova-compute", "cmp2"),
        ]
        self.agents = [
            neutron_agent("ovn-controller", "OVN Controller Gateway agent", "net1"),
            neutron_agent("ovn-controller", "OVN Controller agent", "cmp1"),
            neutron_agent("ovn-controller", "OVN Controller agent", "cmp2"),
            neutron_agent("neutron-ovn-metadata-agent", "OVN Metadata agent", "cmp1"),
        ]
        self.cinder = [cinder_service("cinder-scheduler", "ctl1"), cinder_service("cinder-volume", "stor1@rbd")]
        # url -> HTTP status, or an exception to raise; everything else answers as its service would.
        self.answers = {}
        self.delays = {}
        self.refuse = {}  # list name -> exception
        self.catalog_error = None  # raised on reading the catalog, as a failed authentication would
        self.calls = []
        self.gets = []
        self.connect_args = None
        self.compute = SimpleNamespace(services=lambda: self.listing("compute.services", self.nova))
        self.network = SimpleNamespace(agents=lambda: self.listing("network.agents", self.agents))
        self.block_storage = SimpleNamespace(services=lambda: self.listing("block_storage.services", self.cinder))
        self.session = FakeSession(self)

    @property
    def service_catalog(self):
        if self.catalog_error:
            raise self.catalog_error
        return self.catalog

    @service_catalog.setter
    def service_catalog(self, value):
        self.catalog = value

    def listing(self, name, items):
        self.calls.append(name)
        if name in self.refuse:
            raise self.refuse[name]
        return iter(items)

    def run_command(self, argv, **_kwargs):
        raise AssertionError(f"cloud_health must run no command: {argv}")

    def urls(self, interface=None):
        return sorted(
            e["url"] for s in self.service_catalog for e in s["endpoints"] if interface in (None, e["interface"])
        )


class FakeSession:
    """keystoneauth's Session as the module uses it: GET only."""

    def __init__(self, cloud):
        self.cloud = cloud

    def get(self, url, **kwargs):
        self.cloud.gets.append((url, kwargs))
        time.sleep(self.cloud.delays.get(url, 0))
        answer = self.cloud.answers.get(url, 300 if url.endswith(":9292") else 200)
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(status_code=answer)

    def _write(self, *args, **kwargs):
        raise AssertionError(f"cloud_health must only GET: {args} {kwargs}")

    post = put = patch = delete = request = _write


@pytest.fixture
def cloud(monkeypatch):
    fake = FakeCloud()

    def connect(**kwargs):
        fake.connect_args = kwargs
        return fake

    patch_module(monkeypatch, fake)
    monkeypatch.setattr(openstack, "connect", connect)
    return fake


def run_module(**args):
    with patch_module_args({"cloud": "stackwright", **args}), pytest.raises(Exited) as caught:
        cloud_health.main()
    return caught.value.result


def fail_module(**args):
    with patch_module_args({"cloud": "stackwright", **args}), pytest.raises(Failed) as caught:
        cloud_health.main()
    return caught.value.result


def endpoint(result, url):
    return next(e for e in result["endpoints"] if e["url"] == url)


def test_healthy_cloud_has_no_problem_and_everything_listed(cloud):
    result = run_module()
    assert result["changed"] is False
    assert result["healthy"] is True
    assert result["problems"] == []
    assert result["notes"] == []
    assert cloud.connect_args["cloud"] == "stackwright"
    assert result["msg"] == (
        "healthy: 12 endpoints reachable, 4 compute services up, 4 network agents up, 2 volume services up"
    )
    assert result["summary"] == {
        "endpoints": {"total": 13, "probed": 12, "reachable": 12, "unreachable": 0},
        "compute_services": {"total": 4, "up": 4, "down": 0, "disabled": 0},
        "network_agents": {"total": 4, "up": 4, "down": 0, "disabled": 0},
        "volume_services": {"total": 2, "up": 2, "down": 0, "disabled": 0},
    }
    assert [(c["binary"], c["host"]) for c in result["compute_services"]] == [
        ("nova-compute", "cmp1"),
        ("nova-compute", "cmp2"),
        ("nova-conductor", "ctl1"),
        ("nova-scheduler", "ctl1"),
    ]
    assert result["compute_services"][1] == {
        "binary": "nova-compute",
        "host": "cmp2",
        "status": "enabled",
        "state": "up",
        "enabled": True,
        "up": True,
        "updated_at": "2026-05-09T10:41:07.000000",
        "disabled_reason": None,
        "forced_down": False,
        "availability_zone": "nova",
        "id": "nova-compute-cmp2",
    }
    agent = next(a for a in result["network_agents"] if a["host"] == "net1")
    assert agent["agent_type"] == "OVN Controller Gateway agent"
    assert agent["alive"] is True and agent["up"] is True and agent["enabled"] is True
    assert agent["updated_at"] == "2026-05-09 10:40:55"
    assert [v["host"] for v in result["volume_services"]] == ["ctl1", "stor1@rbd"]


def test_endpoints_carry_catalog_facts_and_probe_results(cloud):
    result = run_module()
    compute = endpoint(result, f"{PUBLIC}:8774/v2.1")
    latency = compute.pop("latency_ms")
    assert compute == {
        "service_type": "compute",
        "service_name": "nova",
        "interface": "public",
        "url": f"{PUBLIC}:8774/v2.1",
        "region": "RegionOne",
        "probed": True,
        "reachable": True,
        "status_code": 200,
        "error": None,
    }
    assert isinstance(latency, float) and latency >= 0
    # Sorted by service type, then region and interface.
    assert [(e["service_type"], e["interface"]) for e in result["endpoints"]][:5] == [
        ("block-storage", "internal"),
        ("block-storage", "public"),
        ("compute", "internal"),
        ("compute", "public"),
        ("identity", "admin"),
    ]


def test_latency_is_measured_in_milliseconds(cloud):
    cloud.delays[f"{INTERNAL}:9696"] = 0.05
    result = run_module()
    assert endpoint(result, f"{INTERNAL}:9696")["latency_ms"] >= 50
    assert all(isinstance(e["latency_ms"], float) for e in result["endpoints"] if e["probed"])


def test_probes_are_unauthenticated_gets_with_the_timeout_and_no_retry(cloud):
    run_module(probe_timeout=2.5)
    assert sorted(url for url, _kwargs in cloud.gets) == sorted(cloud.urls("public") + cloud.urls("internal"))
    for _url, kwargs in cloud.gets:
        assert kwargs["authenticated"] is False
        assert kwargs["raise_exc"] is False
        assert kwargs["timeout"] == 2.5
        assert kwargs["connect_retries"] == 0


def test_a_down_compute_service_is_one_problem(cloud):
    cloud.nova[3] = nova_service("nova-compute", "cmp2", state="down")
    result = run_module()
    assert result["healthy"] is False
    assert result["problems"] == ["nova-compute on cmp2 is down (last report 2026-05-09T10:41:07.000000)"]
    assert result["summary"]["compute_services"] == {"total": 4, "up": 3, "down": 1, "disabled": 0}
    assert result["msg"] == "unhealthy, 1 problem: " + result["problems"][0]


def test_a_forced_down_compute_service_says_so(cloud):
    cloud.nova[3] = nova_service("nova-compute", "cmp2", state="down", forced_down=True)
    cloud.nova[3].updated_at = None
    result = run_module()
    assert result["problems"] == ["nova-compute on cmp2 is down (forced down)"]
    assert result["compute_services"][1]["forced_down"] is True


def test_a_dead_network_agent_is_one_problem(cloud):
    cloud.agents[2] = neutron_agent("ovn-controller", "OVN Controller agent", "cmp2", alive=False)
    result = run_module()
    assert result["healthy"] is False
    assert result["problems"] == [
        "ovn-controller on cmp2 is down (OVN Controller agent, last heartbeat 2026-05-09 10:40:55)"
    ]
    dead = next(a for a in result["network_agents"] if a["host"] == "cmp2")
    assert dead["alive"] is False and dead["up"] is False


def test_a_down_volume_service_is_one_problem(cloud):
    cloud.cinder[1] = cinder_service("cinder-volume", "stor1@rbd", state="down")
    result = run_module()
    assert result["problems"] == ["cinder-volume on stor1@rbd is down (last report 2026-05-09T10:41:05.000000)"]


def test_an_endpoint_answering_503_is_one_problem(cloud):
    cloud.answers[f"{INTERNAL}:9292"] = 503
    result = run_module()
    assert result["healthy"] is False
    assert result["problems"] == [f"image (glance) internal endpoint {INTERNAL}:9292 answers HTTP 503"]
    glance = endpoint(result, f"{INTERNAL}:9292")
    assert glance["reachable"] is False and glance["status_code"] == 503 and glance["error"] == "HTTP 503"
    assert "reason" not in glance
    assert result["summary"]["endpoints"]["unreachable"] == 1


def test_an_endpoint_that_times_out_is_one_problem(cloud):
    url = f"{PUBLIC}:8776/v3/{PROJECT}"
    cloud.answers[url] = ksa_exceptions.ConnectTimeout(f"Request to {url} timed out")
    result = run_module(probe_timeout=3)
    assert result["healthy"] is False
    assert result["problems"] == [f"block-storage (cinderv3) public endpoint {url} gave no answer within 3 s"]
    probe = endpoint(result, url)
    assert probe["reachable"] is False and probe["status_code"] is None
    assert probe["error"] == f"Request to {url} timed out"
    assert isinstance(probe["latency_ms"], float)


def test_a_refused_connection_names_the_socket_error(cloud):
    url = f"{INTERNAL}:8778"
    cloud.answers[url] = ksa_exceptions.ConnectFailure(
        f"Unable to establish connection to {url}: HTTPSConnectionPool(host='10.89.84.250', port=8778): Max retries "
        "exceeded with url: / (Caused by NewConnectionError('<urllib3.connection.HTTPSConnection object at "
        "0x7f3c>: Failed to establish a new connection: [Errno 111] Connection refused'))"
    )
    result = run_module()
    assert result["problems"] == [f"placement (placement) internal endpoint {url} is unreachable: Connection refused"]
    assert "NewConnectionError" in endpoint(result, url)["error"]


def test_a_tls_failure_says_why(cloud):
    url = f"{PUBLIC}:5000/v3"
    cloud.answers[url] = ksa_exceptions.SSLError(
        f"SSL exception connecting to {url}: HTTPSConnectionPool(host='10.89.84.251', port=5000): Max retries exceeded "
        "with url: /v3 (Caused by SSLError(SSLCertVerificationError(1, '[SSL: CERTIFICATE_VERIFY_FAILED] certificate "
        "verify failed: self-signed certificate in certificate chain (_ssl.c:1000)')))"
    )
    result = run_module()
    assert result["problems"] == [
        f"identity (keystone) public endpoint {url} is unreachable: TLS failed: certificate verify failed: "
        "self-signed certificate in certificate chain"
    ]


@pytest.mark.parametrize("status", [300, 401, 404, 499])
def test_any_answer_below_500_is_reachable(cloud, status):
    cloud.answers[f"{PUBLIC}:9696"] = status
    result = run_module()
    assert result["healthy"] is True
    assert endpoint(result, f"{PUBLIC}:9696")["status_code"] == status


def test_only_the_chosen_interfaces_are_probed(cloud):
    cloud.answers[f"{INTERNAL}:9292"] = 503
    result = run_module(probe_interfaces=["public"])
    assert result["healthy"] is True
    assert sorted(url for url, _kwargs in cloud.gets) == cloud.urls("public")
    internal = endpoint(result, f"{INTERNAL}:9292")
    assert internal["probed"] is False and internal["reachable"] is None and internal["latency_ms"] is None


def test_admin_endpoints_are_probed_when_asked(cloud):
    result = run_module(probe_interfaces=["admin"])
    assert [url for url, _kwargs in cloud.gets] == [f"{INTERNAL}:5000/v3"]
    assert result["summary"]["endpoints"]["probed"] == 1


def test_a_url_shared_by_two_endpoints_is_probed_once(cloud):
    run_module(probe_interfaces=["internal", "admin"])
    assert [url for url, _kwargs in cloud.gets].count(f"{INTERNAL}:5000/v3") == 1


def test_probing_can_be_skipped(cloud):
    cloud.answers[f"{PUBLIC}:8774/v2.1"] = 503
    result = run_module(probe_endpoints=False)
    assert result["healthy"] is True
    assert cloud.gets == []
    assert all(e["probed"] is False and e["reachable"] is None for e in result["endpoints"])
    assert result["notes"] == ["endpoints not probed (probe_endpoints is false)"]
    assert result["msg"] == "healthy: 4 compute services up, 4 network agents up, 2 volume services up"


def test_a_disabled_down_service_is_a_problem_unless_ignored(cloud):
    cloud.nova[3] = nova_service("nova-compute", "cmp2", state="down", status="disabled", disabled_reason="maintenance")
    cloud.agents[2] = neutron_agent("ovn-controller", "OVN Controller agent", "cmp2", alive=False, admin_state_up=False)
    result = run_module()
    assert result["problems"] == [
        "nova-compute on cmp2 is down (disabled: maintenance, last report 2026-05-09T10:41:07.000000)",
        "ovn-controller on cmp2 is down (OVN Controller agent, disabled, last heartbeat 2026-05-09 10:40:55)",
    ]
    result = run_module(ignore_disabled=True)
    assert result["healthy"] is True and result["problems"] == []
    assert result["summary"]["compute_services"] == {"total": 4, "up": 3, "down": 1, "disabled": 1}
    assert result["summary"]["network_agents"]["disabled"] == 1


def test_ignore_disabled_still_reports_enabled_services_that_are_down(cloud):
    cloud.nova[2] = nova_service("nova-compute", "cmp1", state="down")
    cloud.nova[3] = nova_service("nova-compute", "cmp2", state="down", status="disabled")
    result = run_module(ignore_disabled=True)
    assert result["problems"] == ["nova-compute on cmp1 is down (last report 2026-05-09T10:41:07.000000)"]


def test_a_disabled_service_that_is_up_is_no_problem(cloud):
    cloud.nova[3] = nova_service("nova-compute", "cmp2", status="disabled", disabled_reason="drained")
    result = run_module()
    assert result["healthy"] is True
    assert result["compute_services"][1]["enabled"] is False


@pytest.mark.parametrize("volume_type", ["block-storage", "volumev3"])
def test_no_volume_service_in_the_catalog_is_a_note_not_a_problem(cloud, volume_type):
    cloud.service_catalog = [s for s in cloud.service_catalog if s["type"] != "block-storage"]
    if volume_type == "volumev3":  # an older catalog names it volumev3: still a volume service
        cloud.service_catalog.append(catalog_service("volumev3", "cinderv3", f"/v3/{PROJECT}", 8776))
        assert run_module()["volume_services"] != []
        return
    result = run_module()
    assert result["healthy"] is True
    assert result["problems"] == []
    assert result["volume_services"] == []
    assert result["summary"]["volume_services"] == {"total": 0, "up": 0, "down": 0, "disabled": 0}
    assert result["notes"] == [
        "no volume service in the catalog (block-storage, volumev3, volumev2, volume): volume services not checked"
    ]
    assert "block_storage.services" not in cloud.calls


def test_a_refused_listing_is_a_problem(cloud):
    cloud.refuse["network.agents"] = openstack.exceptions.ForbiddenException(
        "ForbiddenException: 403: Client Error for url: https://10.89.84.251:9696/v2.0/agents, rule:get_agent is "
        "disallowed by policy"
    )
    result = run_module()
    assert result["healthy"] is False
    assert len(result["problems"]) == 1
    assert result["problems"][0].startswith("network agents could not be listed: ForbiddenException: 403")
    assert result["network_agents"] == []
    assert result["compute_services"] != []


def test_an_unreachable_api_while_listing_is_a_problem(cloud):
    cloud.refuse["compute.services"] = ksa_exceptions.ConnectFailure("Unable to establish connection to nova")
    result = run_module()
    assert result["problems"] == ["compute services could not be listed: Unable to establish connection to nova"]


def test_several_regions_are_named_in_problems(cloud):
    cloud.service_catalog.append(
        {"type": "image", "name": "glance", "endpoints": [
            {"interface": "public", "region_id": "RegionTwo", "url": "https://r2.example.net:9292"}]}
    )  # fmt: skip
    cloud.answers["https://r2.example.net:9292"] = 502
    result = run_module()
    assert result["problems"] == [
        "image (glance) public endpoint https://r2.example.net:9292 in RegionTwo answers HTTP 502"
    ]


def test_fails_without_a_token_and_catalog(cloud):
    cloud.catalog_error = ksa_exceptions.Unauthorized("The request you have made requires authentication.")
    result = fail_module()
    assert result["msg"] == (
        "no token and service catalog from keystone, nothing to judge: The request you have made requires "
        "authentication. (HTTP 401)"
    )
    assert cloud.calls == [] and cloud.gets == []


def test_check_mode_reads_the_same_and_nothing_is_written(cloud):
    cloud.nova[3] = nova_service("nova-compute", "cmp2", state="down")
    normal = run_module()
    calls, gets = list(cloud.calls), len(cloud.gets)
    checked = run_module(_ansible_check_mode=True)
    for result in (normal, checked):
        for e in result["endpoints"]:
            e.pop("latency_ms")
    assert checked == normal
    assert checked["changed"] is False
    # Only the three listings and GETs happened (FakeCloud has no write call, and FakeSession refuses every other
    # method): nothing in the cloud was changed.
    assert calls == ["compute.services", "network.agents", "block_storage.services"]
    assert cloud.calls == calls * 2 and len(cloud.gets) == 2 * gets


# openstacksdk warns about itself when a resource is built.
@pytest.mark.filterwarnings("ignore:The _compute_attributes method is deprecated")
def test_entries_read_the_attributes_of_openstacksdk_resources():
    """The fakes above mirror openstacksdk's resources; these are the real ones, built from API bodies."""
    from openstack.block_storage.v3.service import Service as VolumeService
    from openstack.compute.v2.service import Service as ComputeService
    from openstack.network.v2.agent import Agent

    nova = ComputeService.existing(
        id="1", binary="nova-compute", host="cmp2", status="disabled", state="down", zone="nova", forced_down=True,
        disabled_reason="evacuated", updated_at="2026-05-09T10:41:07.000000",
    )  # fmt: skip
    assert cloud_health.service_problem("compute_services", cloud_health.compute_service_entry(nova), False) == (
        "nova-compute on cmp2 is down (forced down, disabled: evacuated, last report 2026-05-09T10:41:07.000000)"
    )
    agent = Agent.existing(
        id="2", binary="ovn-controller", agent_type="OVN Controller agent", host="cmp1", alive=True,
        admin_state_up=True, heartbeat_timestamp="2026-05-09 10:40:55", availability_zone=None,
    )  # fmt: skip
    entry = cloud_health.network_agent_entry(agent)
    assert (entry["up"], entry["enabled"], entry["updated_at"]) == (True, True, "2026-05-09 10:40:55")
    cinder = VolumeService.existing(
        binary="cinder-volume", host="stor1@rbd", status="enabled", state="up", zone="nova", disabled_reason=None,
        updated_at="2026-05-09T10:41:05.000000",
    )  # fmt: skip
    entry = cloud_health.volume_service_entry(cinder)
    assert (entry["up"], entry["enabled"], entry["availability_zone"]) == (True, True, "nova")


@pytest.fixture
def http_server():
    """A local HTTP server: /ok answers 300 as glance does, /broken 503, /slow nothing before the timeout."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    release = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path == "/slow":
                release.wait(5)
            self.send_response({"/ok": 300, "/broken": 503}.get(self.path, 200))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *_args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    release.set()
    server.shutdown()
    server.server_close()


def test_probe_with_a_real_keystoneauth_session(http_server):
    """The probe's call and the errors it catches, against keystoneauth itself rather than a fake."""
    import socket

    from keystoneauth1 import session as ksa_session

    session = ksa_session.Session()
    ok = cloud_health.probe(session, f"{http_server}/ok", 2)
    assert (ok["reachable"], ok["status_code"], ok["error"]) == (True, 300, None)
    broken = cloud_health.probe(session, f"{http_server}/broken", 2)
    assert (broken["reachable"], broken["status_code"], broken["reason"]) == (False, 503, "answers HTTP 503")
    slow = cloud_health.probe(session, f"{http_server}/slow", 0.3)
    assert (slow["reachable"], slow["reason"]) == (False, "gave no answer within 0.3 s")
    assert 250 <= slow["latency_ms"] < 3000
    with socket.socket() as unused:  # a port nobody listens on
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    refused = cloud_health.probe(session, f"http://127.0.0.1:{port}/", 2)
    assert (refused["reachable"], refused["reason"]) == (False, "is unreachable: Connection refused")

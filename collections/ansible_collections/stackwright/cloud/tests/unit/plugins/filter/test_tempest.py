# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filter stackwright.cloud.tempest_report."""

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.stackwright.cloud.plugins.filter.tempest import FilterModule

tempest_report = FilterModule().filters()["tempest_report"]

# The shape subunit2junitxml writes: one <testsuite>, a child element only for failures, errors and skips.
REPORT = """<testsuite errors="1" failures="1" name="" tests="7" time="12.5">
<testcase classname="tempest.api.volume.test_volumes_actions.VolumesActionsTest" name="test_volume_upload[id-d8f1]"
  time="30.1"><failure type="testtools.testresult.real._StringException">Traceback ...</failure></testcase>
<testcase classname="" name="setUpClass (tempest.api.compute.admin.test_migrations.MigrationsAdminTest)" time="0.0">
  <error type="testtools.testresult.real._StringException">Traceback ...</error></testcase>
<testcase classname="tempest.api.compute.test_a.A" name="test_one" time="1.0"/>
<testcase classname="tempest.api.compute.test_a.A" name="test_two" time="1.0"/>
<testcase classname="tempest.api.compute.test_b.B" name="test_live" time="0.0">
  <skipped>Less than 2 compute nodes, skipping multinode tests.</skipped></testcase>
<testcase classname="tempest.api.compute.test_b.B" name="test_cold" time="0.0">
  <skipped>Less than 2 compute nodes, skipping multinode tests.</skipped></testcase>
<testcase classname="tempest.api.image.v2.test_images.ImportImagesTest" name="test_web_download" time="0.0">
  <skipped>Server does not support web-download import method</skipped></testcase>
</testsuite>"""


def test_counts_failures_errors_and_skips_by_reason():
    assert tempest_report(REPORT) == {
        "tests": 7,
        "passed": 2,
        "skipped": 3,
        "failed": 2,
        "failed_tests": [
            "setUpClass (tempest.api.compute.admin.test_migrations.MigrationsAdminTest)",
            "tempest.api.volume.test_volumes_actions.VolumesActionsTest.test_volume_upload[id-d8f1]",
        ],
        "skipped_by_reason": {
            "Less than 2 compute nodes, skipping multinode tests.": 2,
            "Server does not support web-download import method": 1,
        },
    }


def test_a_skip_without_text_is_counted_under_its_own_label():
    report = '<testsuite><testcase classname="c" name="t"><skipped message="by attribute"/></testcase>' \
             '<testcase classname="c" name="u"><skipped/></testcase></testsuite>'  # fmt: skip
    assert tempest_report(report)["skipped_by_reason"] == {"(no reason given)": 1, "by attribute": 1}


def test_an_empty_run_has_no_tests():
    assert tempest_report('<testsuite tests="0"/>') == {
        "tests": 0, "passed": 0, "skipped": 0, "failed": 0, "failed_tests": [], "skipped_by_reason": {},
    }  # fmt: skip


@pytest.mark.parametrize("text", ["", "not xml", "<html><body/></html>"])
def test_anything_but_a_junit_report_is_refused(text):
    with pytest.raises(AnsibleFilterError, match="tempest_report"):
        tempest_report(text)

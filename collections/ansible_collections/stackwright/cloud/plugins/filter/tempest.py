# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Filter tempest_report: the counts of a Tempest run from its JUnit XML; docs in the sidecar tempest_report.yml."""

import xml.etree.ElementTree as ET
from collections import Counter

from ansible.errors import AnsibleFilterError


def tempest_report(junit_xml):
    """Counts, failed test ids and skips grouped by reason of one JUnit XML report (subunit2junitxml's)."""
    try:
        # The report is the deploy host's own, written by subunit2junitxml from our Tempest run.
        root = ET.fromstring(junit_xml)  # noqa: S314
    except ET.ParseError as error:
        raise AnsibleFilterError(f"tempest_report: the JUnit report is not XML ({error})") from error
    if root.tag not in ("testsuite", "testsuites"):
        raise AnsibleFilterError(f"tempest_report: expected a <testsuite> report, got <{root.tag}>")
    cases = list(root.iter("testcase"))
    failed, reasons = [], Counter()
    for case in cases:
        test_id = ".".join(part for part in (case.get("classname"), case.get("name")) if part)
        if case.find("failure") is not None or case.find("error") is not None:
            failed.append(test_id)
        elif (skipped := case.find("skipped")) is not None:
            reason = (skipped.text or skipped.get("message") or "").strip() or "(no reason given)"
            reasons[reason] += 1
    skipped_count = sum(reasons.values())
    return {
        "tests": len(cases),
        "passed": len(cases) - len(failed) - skipped_count,
        "skipped": skipped_count,
        "failed": len(failed),
        "failed_tests": sorted(failed),
        # Most frequent reason first; equal counts by reason, so the report compares between runs.
        "skipped_by_reason": dict(sorted(reasons.items(), key=lambda item: (-item[1], item[0]))),
    }


class FilterModule:
    def filters(self):
        return {"tempest_report": tempest_report}

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""What ends a part of the benchmark: a failure (recorded with its message) or a reason to skip it."""


class BenchError(Exception):
    """A part cannot be measured: recorded as failed with this message."""


class Skip(Exception):
    """A part's precondition does not hold: recorded under `skipped` with this reason."""


class StepFailed(BenchError):
    def __init__(self, step, tail):
        super().__init__(f"{step['name']} failed (exit {step['rc']}): {step['command']}")
        self.step = step
        self.tail = tail

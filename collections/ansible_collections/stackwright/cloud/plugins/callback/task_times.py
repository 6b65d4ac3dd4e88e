# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
DOCUMENTATION = """
name: task_times
type: aggregate
version_added: 0.1.0
short_description: One JSON line per task and host with its start, end, duration and status
description:
  - Appends one JSON object per line to the file named by C(STACKWRIGHT_TASK_TIMES) for every task result of every
    host (handlers included); several playbook runs may share one file. Without that variable it does nothing.
  - Each line has C(playbook), C(play), C(role) (empty outside roles), C(task) (the templated name without the role
    prefix), C(action) (as written in the task), C(handler), C(host), C(delegated_to), C(start) and C(end) (Unix
    time in seconds), C(duration) (seconds), C(status) (ok, changed, failed, skipped or unreachable) and C(ignored).
  - The start is when the task was handed to a worker for that host, so the duration includes the connection and
    the module's transfer, as an operator waits for them. scripts/bench reads these lines (docs/benchmarks.md).
  - The project's C(ansible.cfg) enables it (C(callbacks_enabled)), so it also runs under ansible-runner and AWX,
    which set C(callback_plugins) to their own directory.
options:
  output:
    description: File the lines are appended to; unset or empty writes nothing.
    type: path
    env:
      - name: STACKWRIGHT_TASK_TIMES
"""

import json
import time

from ansible.plugins.callback import CallbackBase


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._file = None
        self._playbook = ""
        self._play = ""
        # task uuid -> (templated name, handler?, time the task started)
        self._tasks = {}
        # (task uuid, host name) -> time the task was handed to a worker for that host
        self._starts = {}

    def _output(self):
        """The open output file, or None when no file is asked for."""
        if self._file is None:
            path = self.get_option("output")
            if not path:
                return None
            self._file = open(path, "a", encoding="utf-8")  # noqa: SIM115 (kept open for the whole run)
        return self._file

    def v2_playbook_on_start(self, playbook):
        self._playbook = getattr(playbook, "_file_name", "") or ""

    def v2_playbook_on_play_start(self, play):
        self._play = play.get_name().strip()

    def _task_started(self, task, handler):
        self._tasks[task._uuid] = (task.name or task.action, handler, time.time())

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_started(task, handler=False)

    def v2_playbook_on_handler_task_start(self, task):
        self._task_started(task, handler=True)

    def v2_runner_on_start(self, host, task):
        self._starts[(task._uuid, host.get_name())] = time.time()

    def _record(self, result, status, ignored=False):
        out = self._output()
        if out is None:
            return
        end = time.time()
        task = getattr(result, "task", None) or result._task
        host = (getattr(result, "host", None) or result._host).get_name()
        name, handler, task_start = self._tasks.get(task._uuid, (task.name or task.action, False, end))
        start = self._starts.pop((task._uuid, host), task_start)
        delegated = (result.result.get("_ansible_delegated_vars") or {}).get("ansible_delegated_host")
        record = {
            "playbook": self._playbook,
            "play": self._play,
            "role": task._role.get_name(include_role_fqcn=False) if task._role else "",
            "task": str(name),
            "action": str(task.action),
            "handler": handler,
            "host": host,
            "delegated_to": delegated,
            "start": round(start, 3),
            "end": round(end, 3),
            "duration": round(end - start, 3),
            "status": status,
            "ignored": ignored,
        }
        out.write(json.dumps(record) + "\n")
        out.flush()

    def v2_runner_on_ok(self, result):
        self._record(result, "changed" if result.is_changed() else "ok")

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, "failed", ignored=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, "skipped")

    def v2_runner_on_unreachable(self, result):
        self._record(result, "unreachable")

    def v2_playbook_on_stats(self, stats):
        if self._file is not None:
            self._file.close()
            self._file = None

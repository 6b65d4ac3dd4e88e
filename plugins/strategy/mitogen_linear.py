"""Mitogen's linear strategy, from the mitogen package pinned in requirements.txt, so ansible.cfg can name it without
a path into the venv. Plain SSH with pipelining stays one setting away: ANSIBLE_STRATEGY=linear (README)."""

import ansible_mitogen.affinity
from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

# Mitogen pins its processes to CPUs. Below 4 CPUs it keeps CPU 0 for its connection multiplexer and pins the
# top-level process, every worker and all that they start (local modules, podman and the lab hosts it starts, Tempest)
# to the one CPU left: on a 2-core deploy host the whole lab cloud ran on one core beside an idle one. The kernel's
# scheduler places them instead; its base policy assigns nothing.
ansible_mitogen.affinity.policy = ansible_mitogen.affinity.Policy()

__all__ = ["StrategyModule"]

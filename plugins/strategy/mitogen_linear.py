"""Mitogen's linear strategy, from the mitogen package pinned in requirements.txt, so ansible.cfg can name it without
a path into the venv. Plain SSH with pipelining stays one setting away: ANSIBLE_STRATEGY=linear (README)."""

from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule

__all__ = ["StrategyModule"]

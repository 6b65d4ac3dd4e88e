# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""The deploy host's Python tools: the deploy benchmark (bench) and the guest test image builder (guest_image).

Their entry points are scripts/bench and scripts/build-guest-image, which the Makefile, roles and docs run by path.
"""

from pathlib import Path

# The checkout these tools work on: playbooks, inventories and artifacts are found from here.
REPO = Path(__file__).resolve().parent.parent

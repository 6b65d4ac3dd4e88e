# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Make the in-tree collection importable as ansible_collections.stackwright.cloud without installing it."""

import sys
from pathlib import Path

# tests/unit/conftest.py -> <repo>/collections
COLLECTIONS = str(Path(__file__).resolve().parents[5])
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

# Copyright: Stackwright contributors
# Apache License 2.0 (see LICENSE)
"""Make the in-tree collection importable as ansible_collections.stackwright.cloud for the tests."""

import sys
from pathlib import Path

COLLECTIONS = str(Path(__file__).resolve().parent.parent / "collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)

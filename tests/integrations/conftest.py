"""The trainer tests' micro config and tiny model (tests/trainer/micro.py) serve these tests too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))

from micro import base_model  # noqa: F401

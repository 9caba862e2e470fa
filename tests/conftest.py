"""Shared by every test folder: the tiny model fixture and the 'parity' environment.

The helpers live in tests/support, which pyproject.toml puts on pytest's ``pythonpath``."""

import parity_env  # noqa: F401 (registers the 'parity' environment)
from micro import base_model  # noqa: F401 (the tiny cold-started model a test may ask for)

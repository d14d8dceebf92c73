"""Test setup, run before anything imports huggingface_hub, transformers or datasets (they read
HF_ENDPOINT, HF_HOME and HF_HUB_OFFLINE once, at import).

No test reaches the network:
- HF_ENDPOINT is the local test Hub (tests/hub_server.py), whose socket is bound here, so its
  address is fixed before any HF library reads it;
- every test runs offline (HF_HUB_OFFLINE=1) in a private HF_HOME, except a test that takes the
  ``hub`` fixture (tests/hub_fixtures.py): it is online against the local Hub, for itself only;
- a socket guard refuses connections to anything but loopback.
"""

import os
import sys
import tempfile

import pytest

pytest.register_assert_rewrite("hub_fixtures")
import hub_fixtures  # noqa: E402 - binds the local Hub's socket

_TOO_LATE = sorted({"huggingface_hub", "transformers", "datasets", "evaluate"} & set(sys.modules))
assert not _TOO_LATE, (
    f"{_TOO_LATE} imported before tests/conftest.py could set HF_ENDPOINT and HF_HOME"
)

_HF_HOME = tempfile.mkdtemp(prefix="hf-logme-tests-")
os.environ["HF_HOME"] = _HF_HOME
os.environ["HF_ENDPOINT"] = hub_fixtures.SERVER.endpoint
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_EVALUATE_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
os.environ["DISABLE_SAFETENSORS_CONVERSION"] = "1"  # transformers would ask a Space to convert .bin
os.environ.pop("HF_TOKEN", None)
hub_fixtures.install_network_guard()

pytest_plugins = ["hub_fixtures"]

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # the run builders beside these tests (dashboard_runs.py)

from dashboard_runs import build_runs


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """One tree of every kind of run, built once: the tests only read it."""
    root = tmp_path_factory.mktemp("runs")
    build_runs(root)
    return root


@pytest.fixture(scope="session")
def client(runs_root):
    from starlette.testclient import TestClient

    from sparring.dashboard.app import create_app
    from sparring.dashboard.runs import RunsRoot

    return TestClient(create_app(RunsRoot.at(runs_root)), base_url="http://127.0.0.1",
                      raise_server_exceptions=False)

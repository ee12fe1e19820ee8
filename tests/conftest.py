"""Shared pytest setup. Fixtures for a running stack and a `chaos` handle come from the walletchaos
pytest plugin (walletchaos/pytest_plugin.py), registered through the package's pytest11 entry point."""

import os

import pytest

from walletchaos.topology.stale import STATE_DIR_ENV


@pytest.fixture(autouse=True, scope="session")
def _isolated_stale_state(tmp_path_factory: pytest.TempPathFactory):
    """The stale-process records of every stack the tests start go to a directory of this session,
    never to the user's home (where a real run's records live); subprocesses inherit it."""
    previous = os.environ.get(STATE_DIR_ENV)
    os.environ[STATE_DIR_ENV] = str(tmp_path_factory.mktemp("walletchaos-state"))
    yield
    if previous is None:
        os.environ.pop(STATE_DIR_ENV, None)
    else:
        os.environ[STATE_DIR_ENV] = previous

"""Shared fixtures: run a real module as a real process, find the collection, make DBs."""

import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(REPO, '.collections')
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, os.path.join(REPO, 'tests', 'lab'))

from module_runner import run_module  # noqa: E402  (tests/lab is not a package)


@pytest.fixture
def module():
    return run_module

"""Fixtures of the state store tests."""

from __future__ import annotations

import pytest

from tests.state.backends import CONSTRAINT_VIOLATIONS


@pytest.fixture
def constraint_violation(request: pytest.FixtureRequest) -> type[Exception]:
    """The constraint error of the backend the test's `state_store` runs on."""
    return CONSTRAINT_VIOLATIONS[request.node.callspec.params["state_store"]]

"""The operations tests share the containers tests' module-scoped daemon fixture."""

from tests.containers.conftest import engine  # noqa: F401 - a fixture

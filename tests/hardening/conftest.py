"""The hardening tests print how much they tried (kill points, fuzz inputs) at the end."""

from __future__ import annotations

import pytest

from tests.hardening.figures import FIGURES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not FIGURES:
        return
    terminalreporter.section("hardening figures")
    for name, value in sorted(FIGURES.items()):
        terminalreporter.write_line(f"{name}: {value}")

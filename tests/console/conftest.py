"""The browser every console test module shares: one headless Chromium per module, on that module's ``server``."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.console.browser import Console, chromium
from tests.server_harness import RunningServer


@pytest.fixture(scope="module")
def console(server: RunningServer) -> Iterator[Console]:
    with chromium() as driver:
        yield Console(driver, server.url)

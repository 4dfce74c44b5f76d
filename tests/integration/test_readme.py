"""The README's quick start runs as written (real model, temp folder)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.model
README = Path(__file__).resolve().parents[2] / "README.md"


def test_quick_start_block_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    block = re.search(r"## Quick start\n\n```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    monkeypatch.chdir(tmp_path)
    for _ in range(2):  # re-runnable on the same folder
        exec(compile(block.group(1), "README.md", "exec"), {})
        out = capsys.readouterr().out
        assert "I like coffee" in out and "AddMemories" in out and "The user likes espresso" in out

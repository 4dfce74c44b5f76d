"""``memory-plugin serve --config FILE``: the ``[engine]`` section sets the engine's Settings, and a wrong key or
value is refused with its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from memory_plugin import InvalidArgumentError, Settings
from memory_plugin.server.serve import load_config


def test_the_engine_section_sets_the_engines_settings(tmp_path: Path) -> None:
    assert load_config(tmp_path).settings == Settings()
    file = tmp_path / "server.toml"
    file.write_text("[engine]\njob_lease_seconds = 3.5\nvector_memory_limit = 0\n")
    assert load_config(tmp_path, file).settings == Settings(job_lease_seconds=3.5, vector_memory_limit=0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[engine]\nlease = 3\n", r"engine\.lease: is not an engine setting; allowed: \['close_wait_seconds'"),
        ("[engine]\njob_lease_seconds = 0\n", r"engine\.job_lease_seconds: must be a number of seconds > 0"),
        ('[engine]\nvector_memory_limit = "all"\n', r"engine\.vector_memory_limit: must be an integer >= 0"),
        ("[engines]\n", r"engines: is not a section of the server's configuration \(server, engine, stores\)"),
    ],
)
def test_a_wrong_engine_setting_is_named(tmp_path: Path, text: str, message: str) -> None:
    file = tmp_path / "server.toml"
    file.write_text(text)
    with pytest.raises(InvalidArgumentError, match=message):
        load_config(tmp_path, file)

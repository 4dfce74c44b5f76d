"""Engine settings refuse what they cannot mean, naming the field and what is allowed."""

from __future__ import annotations

from typing import Any

import pytest

from memory_plugin import InvalidArgumentError, Settings


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("exact_scan_limit", -1),
        ("exact_scan_limit", 1.5),
        ("exact_scan_limit", True),
        ("vector_memory_limit", -1),
        ("vector_memory_limit", "100"),
        ("vector_memory_limit", False),
        ("vector_shortlist_above", -1),
        ("vector_shortlist_above", 2.5),
        ("close_wait_seconds", -0.5),
        ("close_wait_seconds", "soon"),
    ],
)
def test_a_bad_setting_is_refused_naming_the_field(field: str, value: Any) -> None:
    with pytest.raises(InvalidArgumentError) as refused:
        Settings(**{field: value})
    assert refused.value.field == field
    assert "must be" in str(refused.value)


def test_zero_limits_are_allowed_they_switch_a_path_off() -> None:
    settings = Settings(exact_scan_limit=0, vector_memory_limit=0, vector_shortlist_above=0)
    assert (settings.exact_scan_limit, settings.vector_memory_limit, settings.vector_shortlist_above) == (0, 0, 0)

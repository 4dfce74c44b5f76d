"""Guards retrieval quality against regressions: turn-level recall on one LoCoMo development conversation, through
the public API and the real model, must stay above a floor well below what the default engine reaches (see
benchmarks/locomo.py). Not a timing test.

The data lives outside the repository (``../shared/data/locomo``, or ``$MEMORY_PLUGIN_LOCOMO_DATA``); it is an
evaluation set, never copied into the project.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from benchmarks.locomo import evaluate

pytestmark = pytest.mark.model
ROOT = Path(__file__).resolve().parents[2]
DATA = Path(os.environ.get("MEMORY_PLUGIN_LOCOMO_DATA") or ROOT.parent / "shared" / "data" / "locomo")
SLICE = "30.json"  # the smallest development conversation: 369 turns, 81 questions
# Measured on this slice with the default engine: R@5 0.743, R@10 0.792; before ranking was tuned, the whole
# development set gave 0.387 / 0.499. The floors catch a fall back towards that, not noise.
FLOOR = {"5": 0.60, "10": 0.65}


def test_recall_on_a_development_conversation_stays_above_the_floor(tmp_path: Path) -> None:
    source = DATA / SLICE
    assert source.exists(), f"LoCoMo development data not found at {DATA}; set MEMORY_PLUGIN_LOCOMO_DATA"
    shutil.copy(source, tmp_path / SLICE)
    figures = evaluate(tmp_path, path=tmp_path / "store")
    assert figures["questions"] == 81
    for k, floor in FLOOR.items():
        assert figures["recall"][k] >= floor, (k, figures["recall"])

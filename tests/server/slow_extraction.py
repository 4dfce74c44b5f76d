"""An extractor for a served process that is slow on purpose, so a test can stop the server while a request is in
flight: it touches the file named by ``$SLOW_EXTRACTION_MARKER`` when it starts, then takes two seconds."""

from __future__ import annotations

import os
import time
from pathlib import Path

from memory_plugin.extraction import ExtractionInput, MemoryOperation, TurnExtractor

SECONDS = 2.0


class SlowTurns(TurnExtractor):
    def extract(self, request: ExtractionInput) -> list[MemoryOperation]:
        Path(os.environ["SLOW_EXTRACTION_MARKER"]).touch()
        time.sleep(SECONDS)
        return super().extract(request)

"""What every benchmark script does before anything else (``import _prelude`` as its first import): no model
download and no telemetry, and the repository on the import path of the script and of the processes it starts, so
that ``python benchmarks/x.py`` finds ``benchmarks`` and ``tests`` (the fake embedder, the workloads and the crash
harness live with the tests)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")  # Chroma's
os.environ.setdefault("MEM0_TELEMETRY", "False")  # mem0's, in benchmarks/peers.py
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

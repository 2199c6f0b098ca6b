"""Celine: a Hydra + MLflow experiment runner for ML systems research.

Rooms (`celine.experiments.*`) import `celine.api` and the shared substrates (`celine.llm`);
everything else here is the runner's own.
"""

import os

# MLflow phones home when imported unless told not to, and offline that can hang; set this before
# any module of ours imports mlflow.
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "1")

__version__ = "0.1.0"

"""Celine: a Hydra + MLflow experiment runner for ML systems research.

Rooms (`celine.experiments.*`) import `celine.api` and the shared substrates (`celine.llm`);
everything else here is the runner's own.
"""

__version__ = "0.1.0"

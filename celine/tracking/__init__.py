"""Run tracking. `mlflow_store` is the only module in Celine that talks to MLflow."""

from celine.tracking.base import NullTracker, flatten, open_tracker, tracking_target

__all__ = ["NullTracker", "flatten", "open_tracker", "tracking_target"]

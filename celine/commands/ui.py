"""`celine ui`: the MLflow UI on the project's store."""

from __future__ import annotations

import argparse
import os
import sys

from celine import paths


def main(args: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="celine ui")
    parser.add_argument(
        "--uri", default=None, help="tracking URI (default: the project's SQLite store)"
    )
    parser.add_argument("--port", default="5000")
    parser.add_argument("--host", default="127.0.0.1")
    ns = parser.parse_args(args)
    uri = ns.uri or paths.default_tracking_uri()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        ns.host,
        "--port",
        ns.port,
    ]
    print("celine ui:", " ".join(cmd), flush=True)
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    os.execv(sys.executable, cmd)
    return 0  # not reached

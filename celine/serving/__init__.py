"""A discrete-event, iteration-level (continuous batching) LLM serving simulator.

Shared by the `llm_sched` and `dynasor` rooms. Contract: `/work/briefs/serving_api.md`
(names are binding). Import the pieces from their modules, or from here:

    from celine.serving import Request, Simulator, StaticWorkload, FCFS, LatencyModel
"""

from celine.serving.arrivals import burst_arrivals, gamma_arrivals, poisson_arrivals
from celine.serving.latency import LatencyModel, fit_latency_model, measure_latency
from celine.serving.metrics import summarize
from celine.serving.request import Request
from celine.serving.scheduler import FCFS, MLFQ, OracleSJF, RankScheduler, Scheduler
from celine.serving.simulator import SimResult, Simulator
from celine.serving.workload import StaticWorkload, Workload

__all__ = [
    "FCFS",
    "MLFQ",
    "LatencyModel",
    "OracleSJF",
    "RankScheduler",
    "Request",
    "Scheduler",
    "SimResult",
    "Simulator",
    "StaticWorkload",
    "Workload",
    "burst_arrivals",
    "fit_latency_model",
    "gamma_arrivals",
    "measure_latency",
    "poisson_arrivals",
    "summarize",
]

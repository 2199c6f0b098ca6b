"""Schemas of the dynasor task and its methods, with the paper's names and defaults.

Where the built-in setting (a 1.8M-parameter reasoner on the CPU) differs from the paper, the
comment says why; conf/method/*.yaml repeats the defaults.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from celine.api import ConfigError, existing_path, in_range, one_of
from celine.serving.engine_config import EngineConfig

PROBLEM_SOURCES = ("reasoning", "gsm8k", "math")
REWARD_AGGREGATES = ("mean", "max")  # MCTS uses the mean, Rebase the max (paper §3.1)
PROGRAMS = ("sc",)  # certaindex / fixed_budget; tree search has its own methods (*_tree)
TREE_PROGRAMS = ("rebase", "beam")
ONLINE_PROGRAMS = PROGRAMS + TREE_PROGRAMS  # dynasor_online runs either kind
# Dynasor-CoT "saving effort" presets of the reference: (n_consistent, probe_interval)
EFFORT_LEVELS = {
    "mild": (8, 64),
    "low": (5, 64),
    "mid": (3, 64),
    "high": (2, 64),
    "crazy": (2, 32),
}
# the online ablation ladder (each adds one mechanism to the one before; online.py);
# gang_sjf (Dynasor's scheduler without certaindex) is available, not run by default
SCHEDULERS = (
    "fcfs",
    "gang_fifo",
    "certaindex_fcfs",
    "certaindex_gang",
    "dynasor",
    "gang_sjf",
)
ABLATION_LADDER = SCHEDULERS[:5]


@dataclass
class DynasorTaskConfig:
    name: str = "dynasor"
    corpus: str = "reasoning"  # reasoning (built-in) | gsm8k | math (local JSONL, data_root)
    data_root: str | None = None
    problem_seed: int = 7  # generator seed of the built-in problems (not the model's)
    n_calibration_per_steps: int = 6  # calibration split, per difficulty (profiler-guided tau)
    n_test_per_steps: int = 10  # test split, per difficulty (1..max_steps)
    max_steps: int = 8
    max_problems: int | None = None  # cap per split for local JSONL sets
    pool_size: int = 16  # sampled chains stored per problem, replayed by every method
    temperature: float = 0.8  # sampling creates the disagreement certaindex reads
    top_p: float = 1.0
    max_new_tokens: int = 160  # the longest 8-step chain is ~125 tokens
    batch_size: int = 64
    replay_seeds: int = 5  # each seed replays the pool in another random order
    # `engine=vllm`: Dynasor-CoT runs on a real vLLM (started by Celine, or the server at
    # task.engine.base_url) instead of replaying HF-recorded traces; see engine_run.py
    engine: EngineConfig = field(default_factory=EngineConfig)
    engine_max_num_seqs: int = 64  # vLLM's running-sequence budget for the room's programs

    def __post_init__(self) -> None:
        one_of("task.corpus", self.corpus, PROBLEM_SOURCES)
        existing_path("task.data_root", self.data_root)
        if self.corpus != "reasoning" and self.data_root is None:
            raise ConfigError(
                "task.data_root", None, f"corpus {self.corpus} needs a local JSONL path"
            )
        in_range("task.n_calibration_per_steps", self.n_calibration_per_steps, 1)
        in_range("task.n_test_per_steps", self.n_test_per_steps, 1)
        in_range("task.max_steps", self.max_steps, 1, 8)
        in_range("task.pool_size", self.pool_size, 2)
        in_range("task.temperature", self.temperature, 0.0)
        in_range("task.top_p", self.top_p, 1e-6, 1.0)
        in_range("task.max_new_tokens", self.max_new_tokens, 1)
        in_range("task.batch_size", self.batch_size, 1)
        in_range("task.replay_seeds", self.replay_seeds, 1)
        in_range("task.engine_max_num_seqs", self.engine_max_num_seqs, 1)
        if self.max_problems is not None:
            in_range("task.max_problems", self.max_problems, 1)


@dataclass
class CertaindexConfig:
    """Dynasor's thresholding allocation: detect at `detect_at`, stop if every configured
    certaindex passes its threshold, otherwise grant the program up to `cap`."""

    name: str = "certaindex"
    program: str = "sc"  # sc: self-consistency (n sampled chains, majority vote)
    detect_at: int = 3  # paper: Detect@5 for SC with caps 5-30; 3 of a cap of 8 here
    cap: int = 8  # paper: caps 5-30; the pool holds 16 chains per problem
    entropy_threshold: float | None = 0.7  # paper Table 3, SC/GSM8K and SC/MATH
    reward_threshold: float | None = None  # paper: 0.4 (MCTS), 0.99 (Rebase/GSM8K)
    reward_aggregate: str = "mean"
    reward_model: str | None = None  # a local sequence-classification checkpoint; None: the
    # reasoner's own length-normalised likelihood of the chain
    calibrate: bool = True  # profiler-guided: pick the most aggressive lossless tau
    # below this baseline accuracy no "savings at equal accuracy" is claimed (an untrained
    # model keeps its ~0 accuracy with any early stop); our choice, the paper has none
    min_baseline_accuracy: float = 0.1
    calibration_grid: list[float] = field(
        default_factory=lambda: [round(0.05 * i, 2) for i in range(21)]
    )

    def __post_init__(self) -> None:
        _check_program(self.program)
        in_range("method.detect_at", self.detect_at, 2)
        in_range("method.cap", self.cap, self.detect_at)
        _check_certaindex(self)


@dataclass
class FixedBudgetConfig:
    name: str = "fixed_budget"
    program: str = "sc"
    cap: int = 8  # every program gets exactly `cap` chains (baseline-even)

    def __post_init__(self) -> None:
        _check_program(self.program)
        in_range("method.cap", self.cap, 1)


@dataclass
class TreeSearchSettings:
    """The tree search both tree methods run (equal defaults, so `certaindex_tree` and
    `fixed_budget_tree` replay one cached pool of searches). A step is one chain-of-thought
    line; the knob is the number of searches (`width` leaves each) granted to a problem."""

    program: str = "rebase"  # rebase: reward-balanced expansion | beam: keep the top beam_size
    width: int = 4  # leaves per search = children sampled per round (Rebase's budget)
    balance_temperature: float = 0.1  # Rebase: children ~ softmax(reward / T); our choice
    beam_size: int = 2  # beam: nodes kept per round
    step_tokens: int = 24  # a step ends at '.', '}' or eos, else after this many tokens
    pool_trees: int = 5  # searches sampled per problem and cached, replayed in random orders

    def _check_tree(self) -> None:
        one_of("method.program", self.program, TREE_PROGRAMS)
        in_range("method.width", self.width, 1)
        in_range("method.balance_temperature", self.balance_temperature, 1e-6)
        in_range("method.beam_size", self.beam_size, 1)
        in_range("method.step_tokens", self.step_tokens, 1)
        in_range("method.pool_trees", self.pool_trees, 1)


@dataclass
class CertaindexTreeConfig(TreeSearchSettings):
    """Dynasor on a tree-search program: `detect_at` searches first, stop if every configured
    certaindex over their finished leaves passes, else grant searches up to `cap`."""

    name: str = "certaindex_tree"
    detect_at: int = 2  # searches (8 leaves); paper: Rebase Detect@16 leaves, caps 16-128
    cap: int = 4  # searches (16 leaves)
    entropy_threshold: float | None = 0.85  # paper Table 3, Rebase/GSM8K (0.75 on MATH)
    reward_threshold: float | None = None  # paper: 0.99 (Rebase/GSM8K, max over leaves)
    reward_aggregate: str = "max"  # Rebase: the max reward over terminal paths
    reward_model: str | None = None  # None: the reasoner's own length-normalised likelihood
    calibrate: bool = True
    # below this baseline accuracy no "savings at equal accuracy" is claimed (an untrained
    # model keeps its ~0 accuracy with any early stop); our choice, the paper has none
    min_baseline_accuracy: float = 0.1
    calibration_grid: list[float] = field(
        default_factory=lambda: [round(0.05 * i, 2) for i in range(21)]
    )

    def __post_init__(self) -> None:
        self._check_tree()
        in_range("method.detect_at", self.detect_at, 1)
        in_range("method.cap", self.cap, self.detect_at, self.pool_trees)
        if self.entropy_threshold is not None and self.detect_at * self.width < 2:
            raise ConfigError(
                "method.detect_at", self.detect_at, "detect_at x width >= 2 for the entropy form"
            )
        _check_certaindex(self)


@dataclass
class FixedBudgetTreeConfig(TreeSearchSettings):
    name: str = "fixed_budget_tree"
    cap: int = 4  # every problem gets exactly `cap` searches (baseline-even)

    def __post_init__(self) -> None:
        self._check_tree()
        in_range("method.cap", self.cap, 1, self.pool_trees)


@dataclass
class DynasorCotConfig:
    name: str = "dynasor_cot"
    effort: str | None = (
        None  # a reference preset (mild/low/mid/high/crazy) overrides the two below
    )
    probe_interval: int = 32  # reference OpenAI-proxy default "2,32" (CLI "mid": 64)
    n_consistent: int = 2  # reference OpenAI-proxy default (CLI "mid": 3)
    probe_tokens: int = 10  # reference run.py default
    probe_temperature: float = 0.6
    probe_top_p: float = 0.95
    probe_suffix: str = " \\boxed{"  # the reasoner's own answer cue; the paper's English
    # "Oh, I suddenly got the answer ... \boxed{" is unseen text for this model
    hesitation_words: list[str] = field(
        default_factory=lambda: ["wait", "hold", "but", "okay", "no", "hmm"]
    )
    temperature: float = 0.7  # main chain (reference proxy default)
    trials: int = 2  # chains per problem (reference harness: 10)
    max_new_tokens: int | None = 320  # long 8-step chains reach ~300 tokens; None: the task's
    trace_step: int = 8  # probes are recorded every trace_step tokens, replayed on any
    # multiple of it (reference harness: 32)
    grid_intervals: list[int] = field(default_factory=lambda: [8, 16, 24, 32])
    grid_consistent: list[int] = field(default_factory=lambda: [2, 3, 4])
    # choose (probe_interval, n_consistent) on the grid over calibration-split chains (largest
    # net saving with no accuracy loss), report it on the test split; false: the values above
    calibrate: bool = True
    min_baseline_accuracy: float = 0.1  # below it no savings claim (see CertaindexConfig)

    def __post_init__(self) -> None:
        in_range("method.min_baseline_accuracy", self.min_baseline_accuracy, 0.0, 1.0)
        if self.effort is not None:
            one_of("method.effort", self.effort, EFFORT_LEVELS)
            self.n_consistent, self.probe_interval = EFFORT_LEVELS[self.effort]
            self.calibrate = False  # a named preset is used as it is
        in_range("method.trace_step", self.trace_step, 1)
        in_range("method.probe_interval", self.probe_interval, self.trace_step)
        if self.probe_interval % self.trace_step:
            raise ConfigError(
                "method.probe_interval",
                self.probe_interval,
                f"a multiple of method.trace_step={self.trace_step}",
            )
        in_range("method.n_consistent", self.n_consistent, 1)
        in_range("method.probe_tokens", self.probe_tokens, 1)
        in_range("method.probe_temperature", self.probe_temperature, 0.0)
        in_range("method.probe_top_p", self.probe_top_p, 1e-6, 1.0)
        in_range("method.temperature", self.temperature, 0.0)
        in_range("method.trials", self.trials, 1)
        if self.max_new_tokens is not None:
            in_range("method.max_new_tokens", self.max_new_tokens, 1)
        for i, v in enumerate(self.grid_intervals):
            in_range(f"method.grid_intervals[{i}]", v, self.trace_step)
            if v % self.trace_step:
                raise ConfigError(
                    f"method.grid_intervals[{i}]", v, f"a multiple of {self.trace_step}"
                )
        for i, v in enumerate(self.grid_consistent):
            in_range(f"method.grid_consistent[{i}]", v, 1)


@dataclass
class DynasorCotSyntheticConfig:
    """Dynasor-CoT on synthetic token-deprivation traces, at the reference harness's scale."""

    name: str = "dynasor_cot_synthetic"
    probe_interval: int = 64  # reference CLI default effort "mid" = (3, 64)
    n_consistent: int = 3
    n_problems: int = 200
    trials: int = 10  # reference harness
    trace_step: int = 32  # reference run.sh
    max_tokens: int = 16384
    flip_prob: float = 0.05
    hesitation_prob: float = 0.1
    grid_intervals: list[int] = field(default_factory=lambda: [32, 64, 128, 256, 320])
    grid_consistent: list[int] = field(default_factory=lambda: [2, 3, 5, 8, 10])
    budget_step: int = 1024  # truncation baselines at 1024..max_tokens
    min_baseline_accuracy: float = 0.1

    def __post_init__(self) -> None:
        in_range("method.trace_step", self.trace_step, 1)
        for key in ("probe_interval", "budget_step"):
            value = getattr(self, key)
            if value < self.trace_step or value % self.trace_step:
                raise ConfigError(
                    f"method.{key}", value, f"a multiple of method.trace_step={self.trace_step}"
                )
        for i, v in enumerate(self.grid_intervals):
            if v < self.trace_step or v % self.trace_step:
                raise ConfigError(
                    f"method.grid_intervals[{i}]", v, f"a multiple of {self.trace_step}"
                )
        in_range("method.n_consistent", self.n_consistent, 1)
        in_range("method.n_problems", self.n_problems, 1)
        in_range("method.trials", self.trials, 1)
        in_range("method.max_tokens", self.max_tokens, self.trace_step)
        in_range("method.flip_prob", self.flip_prob, 0.0, 1.0)
        in_range("method.hesitation_prob", self.hesitation_prob, 0.0, 1.0)


@dataclass
class TruncationConfig:
    name: str = "dynasor_truncation"
    budget: int = 192  # tokens per chain (long chains: 40-300); the truncated chain's own answer
    temperature: float = 0.7
    trials: int = 2
    max_new_tokens: int | None = 320  # as dynasor_cot (the same chains); None: the task's

    def __post_init__(self) -> None:
        in_range("method.budget", self.budget, 1)
        if self.max_new_tokens is not None:
            in_range("method.max_new_tokens", self.max_new_tokens, 1)
        in_range("method.temperature", self.temperature, 0.0)
        in_range("method.trials", self.trials, 1)


@dataclass
class DynasorOnlineConfig(TreeSearchSettings):
    """The online ladder on SC programs (`program=sc`) or tree-search programs (`rebase`,
    `beam`: the tree settings are TreeSearchSettings', so the online run replays the very
    searches `certaindex_tree` caches). detect_at, cap and the entropy threshold default to
    the batch method's of the program (`certaindex` or `certaindex_tree`): written once."""

    name: str = "dynasor_online"
    program: str = "sc"  # sc: self-consistency chains | rebase | beam: tree searches
    schedulers: list[str] = field(default_factory=lambda: list(ABLATION_LADDER))
    detect_at: int | None = None  # None: certaindex's 3 chains (sc), certaindex_tree's 2 searches
    cap: int | None = None  # None: 8 chains (sc; paper: SC cap 20 in the rate sweeps), 4 searches
    entropy_threshold: float | None = None  # None: the batch default; replaced by the
    # calibrated tau when calibrate is true
    calibrate: bool = True
    calibration_grid: list[float] = field(
        default_factory=lambda: [round(0.05 * i, 2) for i in range(21)]
    )
    n_programs: int = 160  # per arrival rate
    trace_seeds: int = 3  # program/arrival traces averaged per rate
    rates: list[float] = field(default_factory=list)  # programs/s; empty: auto around capacity
    slo_scale: float = 1.0
    slo_scales: list[float] = field(
        default_factory=lambda: [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0]
    )
    base_deadline_s: float | None = None  # None: 2x an isolated fixed-budget program
    attainment_target: float = 0.9
    starvation_s: float | None = None  # escalate programs older than this; None: base deadline
    max_num_seqs: int = 32
    max_num_batched_tokens: int = 2048
    kv_capacity_tokens: int = 16384
    latency_batch_sizes: list[int] = field(default_factory=lambda: [1, 4, 16, 32])
    latency_prompt_lens: list[int] = field(default_factory=lambda: [32, 128])

    def __post_init__(self) -> None:
        one_of("method.program", self.program, ONLINE_PROGRAMS)
        batch = CertaindexConfig if self.program == "sc" else CertaindexTreeConfig
        for key in ("detect_at", "cap", "entropy_threshold"):
            if getattr(self, key) is None:
                setattr(self, key, batch.__dataclass_fields__[key].default)
        if self.tree:
            self._check_tree()
        for i, s in enumerate(self.schedulers):
            one_of(f"method.schedulers[{i}]", s, SCHEDULERS)
        # SC reads certaindex over >= 2 chains; a tree search has `width` leaves of its own
        in_range("method.detect_at", self.detect_at, 1 if self.tree else 2)
        in_range("method.cap", self.cap, self.detect_at, self.pool_trees if self.tree else None)
        in_range("method.entropy_threshold", self.entropy_threshold, 0.0, 1.0)
        in_range("method.n_programs", self.n_programs, 1)
        in_range("method.trace_seeds", self.trace_seeds, 1)
        for i, r in enumerate(self.rates):
            in_range(f"method.rates[{i}]", r, 1e-9)
        in_range("method.slo_scale", self.slo_scale, 1e-9)
        in_range("method.attainment_target", self.attainment_target, 0.0, 1.0)
        in_range("method.max_num_seqs", self.max_num_seqs, 1)

    @property
    def tree(self) -> bool:
        return self.program in TREE_PROGRAMS


@dataclass
class LongReasonerConfig:
    """`tiny_reasoner_long`: the tiny reasoner (same size and seed) fine-tuned on the reasoning
    corpus with a verification tail after the first answer (self-doubt), so that Dynasor-CoT
    has something to save. Cached apart from the base (`long_reasoner.py`)."""

    name: str = "tiny_reasoner_long"
    corpus: str = "reasoning"  # the generated problems of tiny_reasoner (same seed: same splits)
    data_root: str | None = None
    size: str = "default"
    seed: int = 0
    slip_prob: float = 0.05  # chains whose first pass ends in a slip that the check corrects
    steps: int = 400  # fine-tuning steps from the cached tiny_reasoner
    seq_len: int = 384  # an 8-step long chain is ~280 tokens with its prompt (base: 256)
    lr: float = 1e-3  # base: 2e-3 from scratch
    warmup: int = 20
    cache_dir: str | None = None  # None: <outputs>/models

    def __post_init__(self) -> None:
        one_of("model.corpus", self.corpus, ("reasoning",))
        if self.data_root is not None:
            raise ConfigError("model.data_root", self.data_root, "null (a generated corpus)")
        one_of("model.size", self.size, ("smoke", "default", "gpu"))
        in_range("model.slip_prob", self.slip_prob, 0.0, 1.0)
        for key in ("steps", "seq_len", "warmup"):
            in_range(f"model.{key}", getattr(self, key), 1)
        in_range("model.lr", self.lr, 0.0)


def _check_certaindex(cfg) -> None:
    """The certaindex settings the SC and tree-search Dynasor methods share."""
    in_range("method.min_baseline_accuracy", cfg.min_baseline_accuracy, 0.0, 1.0)
    if cfg.entropy_threshold is None and cfg.reward_threshold is None:
        raise ConfigError("method.entropy_threshold", None, "set at least one certaindex threshold")
    for key in ("entropy_threshold", "reward_threshold"):
        value = getattr(cfg, key)
        if value is not None:
            in_range(f"method.{key}", value, 0.0, 1.0)
    one_of("method.reward_aggregate", cfg.reward_aggregate, REWARD_AGGREGATES)
    existing_path("method.reward_model", cfg.reward_model)
    for i, tau in enumerate(cfg.calibration_grid):
        in_range(f"method.calibration_grid[{i}]", tau, 0.0, 1.0)


def _check_program(program: str) -> None:
    one_of("method.program", program, PROGRAMS)


@dataclass
class DynasorReasonerConfig:
    """`dynasor_reasoner` (`fast_reasoner.py`): tiny_reasoner's corpus and training loop with a
    narrower architecture and a shorter recipe, so that a first run trains it in minutes."""

    name: str = "dynasor_reasoner"
    corpus: str = "reasoning"  # the generated problems (fixed: task.problems reads it)
    seed: int = 0
    hidden: int = 128  # tiny_reasoner: 192
    layers: int = 4
    heads: int = 4
    kv_heads: int = 4
    intermediate: int = 352  # tiny_reasoner: 512
    steps: int = 1500  # tiny_reasoner: 2000
    batch_size: int = 8
    seq_len: int = 256
    lr: float = 3e-3  # tiny_reasoner: 2e-3
    warmup: int = 60
    # training wall time, for the log line up front (measured, see the README)
    est_minutes_idle: float = 6.0
    est_minutes_loaded: float = 12.0
    cache_dir: str | None = None  # None: <outputs>/models

    def __post_init__(self) -> None:
        one_of("model.corpus", self.corpus, ("reasoning",))
        for key in ("hidden", "layers", "heads", "kv_heads", "intermediate", "steps",
                    "batch_size", "seq_len", "warmup"):  # fmt: skip
            in_range(f"model.{key}", getattr(self, key), 1)
        if self.hidden % self.heads or self.heads % self.kv_heads:
            raise ConfigError(
                "model.heads",
                self.heads,
                f"a divisor of model.hidden={self.hidden} and a multiple of model.kv_heads",
            )
        in_range("model.seq_len", self.seq_len, 1, 512)  # the default preset's positions
        if not self.lr > 0:
            raise ConfigError("model.lr", self.lr, "a learning rate above 0")

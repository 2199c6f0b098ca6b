"""The dynasor task: calibration and test problems, the model, and the cached chain pools
that every method replays (so Dynasor and its baselines see the same chains)."""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from pathlib import Path

from celine.api import RunError
from celine.experiments.dynasor.pool import (
    LikelihoodReward,
    LocalRewardModel,
    load_pool,
    pool_key,
    sample_pool,
    save_pool,
)


class DynasorTask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx
        self._lm = None
        self._problems = None

    # -- data -------------------------------------------------------------------------------
    def problems(self):
        """(calibration, test) problems. Built-in: the reasoning corpus's validation and test
        problems of the model's own corpus seed (held out from its training set), balanced per
        difficulty. Local GSM8K/MATH: their validation and test splits."""
        if self._problems is not None:
            return self._problems
        from celine.llm.corpora import load_corpus

        cfg = self.cfg
        if cfg.corpus == "reasoning":
            model_cfg = self.ctx.model_cfg
            trained_on_it = getattr(model_cfg, "corpus", None) == "reasoning"
            # the tiny reasoner's own corpus (same seed): its validation/test problems are held
            # out from its training set. Other models never saw that set: skip generating it.
            opts = {} if trained_on_it else {"n_train": 0}
            splits = load_corpus(
                "reasoning",
                seed=int(getattr(model_cfg, "seed", 0) or 0),
                n_val_per_steps=cfg.n_calibration_per_steps,
                n_test_per_steps=cfg.n_test_per_steps,
                max_steps=cfg.max_steps,
                **opts,
            )
        else:
            splits = load_corpus(cfg.corpus, cfg.data_root)
        cal, test = splits.validation_problems, splits.test_problems
        if cfg.max_problems is not None:
            cal, test = cal[: cfg.max_problems], test[: cfg.max_problems]
        if not cal or not test:
            raise RunError(
                f"corpus {cfg.corpus}: {len(cal)} calibration and {len(test)} test problems; "
                "both splits need problems"
            )
        self._problems = (cal, test)
        return self._problems

    @property
    def on_engine(self) -> bool:
        return self.cfg.engine.name != "sim"

    @contextmanager
    def engine_session(self, max_model_len: int):
        """Yield a completion backend on a real vLLM (`celine.serving.completions`): the
        server at `task.engine.base_url` if given, else an in-process engine Celine starts on
        the served model's checkpoint (its EngineCore in a child process), always shut down,
        also on an exception or Ctrl-C; its log is attached to the run either way. The run is
        tagged with the engine and its version."""
        from celine.serving.completions import EngineCompletions, HTTPCompletions
        from celine.serving.vllm_engine import VLLMEngine, vllm_version
        from celine.serving.vllm_server import VLLMServer

        ecfg, ctx = self.cfg.engine, self.ctx
        tracker = getattr(ctx.tracker, "inner", ctx.tracker)
        if ecfg.base_url is not None or ecfg.server:
            with contextlib.ExitStack() as stack:
                url = ecfg.base_url
                if url is None:
                    server = VLLMServer(
                        self.lm().path, work_dir=Path(ctx.run_dir) / "engine",
                        max_model_len=ecfg.max_model_len or max_model_len,
                        max_num_seqs=self.cfg.engine_max_num_seqs,
                        kv_cache_gib=int(ecfg.kv_cache_gib),
                        omp_threads=ecfg.omp_threads or ctx.hardware.threads, dtype=ecfg.dtype,
                        prefix_caching=ecfg.prefix_caching is not False, block_size=32,
                        startup_timeout_s=ecfg.startup_timeout_s,
                    )  # fmt: skip
                    stack.callback(self._attach, server.log_path)
                    url = stack.enter_context(server).base_url
                key = "task.engine.base_url" if ecfg.base_url else "task.engine.server"
                backend = stack.enter_context(contextlib.closing(HTTPCompletions(url, url_key=key)))
                if hasattr(tracker, "set_tags"):
                    tracker.set_tags({"celine.engine": "vllm-server",
                                      "celine.engine_version": backend.version(),
                                      "celine.engine_url": url})  # fmt: skip
                yield backend
            return
        if hasattr(tracker, "set_tags"):
            tracker.set_tags({"celine.engine": ecfg.name, "celine.engine_version": vllm_version()})
        eng = VLLMEngine(
            self.lm().path, work_dir=Path(ctx.run_dir) / "engine",
            max_num_seqs=self.cfg.engine_max_num_seqs,
            max_num_batched_tokens=max(2048, max_model_len),
            max_model_len=ecfg.max_model_len or max_model_len,
            kv_cache_gib=int(ecfg.kv_cache_gib),
            omp_threads=ecfg.omp_threads or ctx.hardware.threads, dtype=ecfg.dtype,
            seed=ctx.seed,
            # Dynasor-CoT's chunks and probes continue one prefix: the reference enables it
            prefix_caching=True if ecfg.prefix_caching is None else bool(ecfg.prefix_caching),
            # the cache reuses whole KV blocks: vLLM's CPU default (128 tokens) is longer than
            # these ~60-token prompts and short chunks, so it would hit nothing; 32 is the
            # smallest size the CPU attention runs at full speed
            block_size=32,
        )  # fmt: skip
        try:
            with eng:
                yield EngineCompletions(eng)
        finally:
            self._attach(eng.log_path)

    def _attach(self, path: Path) -> None:
        if path.is_file():
            self.ctx.log_artifact(path, "engine")

    def lm(self):
        if self._lm is None:
            self._lm = self.ctx.build_model()
        return self._lm

    def seeds(self) -> list[int]:
        return [self.ctx.seed * 1000 + i for i in range(self.cfg.replay_seeds)]

    # -- pools ------------------------------------------------------------------------------
    def scorer(self, reward_model: str | None):
        lm = self.lm()
        if reward_model:
            return LocalRewardModel(reward_model, device=self.ctx.hardware.device)
        return LikelihoodReward(lm.model, lm.tokenizer)

    def pools(self, reward_model: str | None = None):
        """(calibration pools, test pools), sampled once per (model, problems, settings) and
        cached under outputs/cache/dynasor."""
        cal, test = self.problems()
        return self._pool("calibration", cal, reward_model), self._pool("test", test, reward_model)

    def test_pools(self, reward_model: str | None = None):
        """The test pools alone (baselines need no calibration split)."""
        return self._pool("test", self.problems()[1], reward_model)

    def _cache_path(self, kind: str, split: str, problems, reward_model, **settings) -> Path:
        """Where a sampled pool of `kind` lives: keyed by the model, the problems, the sampling
        settings, the seed and the reward scorer, so any change samples afresh."""
        cfg, lm = self.cfg, self.lm()
        key = pool_key(
            model=str(lm.path),
            model_meta=lm.meta.get("key", ""),
            questions=[p.question for p in problems],
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            seed=self.ctx.seed,
            reward=reward_model or "likelihood",
            **settings,
        )
        return Path(self.ctx.outputs_dir) / "cache" / "dynasor" / f"{kind}-{split}-{key}.json"

    def _pool(self, split: str, problems, reward_model):
        cfg, lm = self.cfg, self.lm()
        path = self._cache_path("pool", split, problems, reward_model, pool_size=cfg.pool_size)
        if path.is_file():
            self.ctx.log.info("reusing the %s chain pool %s", split, path.name)
            return load_pool(path)
        self.ctx.log.info(
            "sampling %d chains for each of %d %s problems (T=%.2f), cached for later runs",
            cfg.pool_size,
            len(problems),
            split,
            cfg.temperature,
        )
        pools = sample_pool(
            lm.model,
            lm.tokenizer,
            problems,
            pool_size=cfg.pool_size,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            max_new_tokens=cfg.max_new_tokens,
            seed=self.ctx.seed + (0 if split == "test" else 7919),
            batch_size=cfg.batch_size,
            scorer=self.scorer(reward_model),
            log=self.ctx.log,
        )
        save_pool(path, pools)
        return pools

    def tree_pools(
        self, settings, reward_model: str | None = None, splits=("calibration", "test")
    ) -> tuple:
        """Pools of `settings.pool_trees` tree searches per problem (`tree_search.py`) for
        each split asked, sampled once per (model, problems, settings) and cached."""
        cal, test = self.problems()
        problems = {"calibration": cal, "test": test}
        return tuple(self._tree_pool(s, problems[s], settings, reward_model) for s in splits)

    def _tree_pool(self, split: str, problems, settings, reward_model):
        from celine.experiments.dynasor.tree_search import (
            load_tree_pool,
            save_tree_pool,
            search_trees,
        )

        cfg, lm = self.cfg, self.lm()
        search = {
            k: getattr(settings, k)
            for k in (
                "program",
                "width",
                "balance_temperature",
                "beam_size",
                "step_tokens",
                "pool_trees",
            )
        }
        # format 2: every search records its per-round requests (`Tree.steps`, online programs)
        path = self._cache_path("tree", split, problems, reward_model, format=2, **search)
        if path.is_file():
            self.ctx.log.info("reusing the %s tree-search pool %s", split, path.name)
            return load_tree_pool(path)
        self.ctx.log.info(
            "searching %d %s trees of width %d for each of %d %s problems, cached for later runs",
            settings.pool_trees,
            settings.program,
            settings.width,
            len(problems),
            split,
        )
        pools = search_trees(
            lm.model,
            lm.tokenizer,
            problems,
            trees=settings.pool_trees,
            width=settings.width,
            expansion=settings.program,
            balance_temperature=settings.balance_temperature,
            beam_size=settings.beam_size,
            step_tokens=settings.step_tokens,
            max_new_tokens=cfg.max_new_tokens,
            temperature=cfg.temperature,
            top_p=cfg.top_p,
            seed=self.ctx.seed + (0 if split == "test" else 7919),
            batch_size=cfg.batch_size,
            scorer=self.scorer(reward_model) if reward_model else None,
            log=self.ctx.log,
        )
        save_tree_pool(path, pools)
        return pools

    def traces(self, method_cfg, probe: bool = True, split: str = "test"):
        """Dynasor-CoT traces (chains with a probe every trace_step tokens) on the test (or
        calibration) problems, cached like the pools."""
        import json
        from dataclasses import asdict

        from celine.experiments.dynasor.cot import ChainTrace, collect_traces

        cfg, lm = self.cfg, self.lm()
        cal, test = self.problems()
        problems = test if split == "test" else cal
        settings = dict(
            trials=method_cfg.trials,
            temperature=method_cfg.temperature,
            max_new_tokens=getattr(method_cfg, "max_new_tokens", None) or cfg.max_new_tokens,
            step=getattr(method_cfg, "trace_step", 4),
            probe_suffix=getattr(method_cfg, "probe_suffix", " \\boxed{"),
            probe_tokens=getattr(method_cfg, "probe_tokens", 10) if probe else 0,
            probe_temperature=getattr(method_cfg, "probe_temperature", 0.6),
            probe_top_p=getattr(method_cfg, "probe_top_p", 0.95),
            hesitation_words=list(getattr(method_cfg, "hesitation_words", [])),
        )
        key = pool_key(
            model=str(lm.path),
            questions=[p.question for p in problems],
            seed=self.ctx.seed,
            format=2,  # 2: prompt and suffix lengths recorded (probe overhead)
            **settings,
        )
        path = Path(self.ctx.outputs_dir) / "cache" / "dynasor" / f"cot-{key}.json"
        if path.is_file():
            self.ctx.log.info("reusing the CoT traces %s", path.name)
            return [ChainTrace(**row) for row in json.loads(path.read_text())]
        traces = collect_traces(
            lm.model,
            lm.tokenizer,
            problems,
            seed=self.ctx.seed + (0 if split == "test" else 7919),
            batch_size=cfg.batch_size,
            log=self.ctx.log,
            **settings,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps([asdict(t) for t in traces]))
        return traces

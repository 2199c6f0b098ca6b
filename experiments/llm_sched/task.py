"""The llm_sched task: the trace, the measured latency model and the serving workloads that
every scheduler (method) is evaluated on. Everything expensive is cached under the outputs
folder, so runs of different methods replay the same trace on the same latency model."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from celine.api import ConfigError
from celine.experiments.llm_sched import data


class LLMSchedTask:
    def __init__(self, cfg, ctx) -> None:
        self.cfg, self.ctx = cfg, ctx
        self.engine = None  # the running real engine inside `engine_session()` (engine=vllm)

    @property
    def on_engine(self) -> bool:
        return self.cfg.engine.name != "sim"

    @contextmanager
    def engine_session(self):
        """Yield the running engine (None for engine=sim). vLLM is started on the served
        model's checkpoint and always shut down: on success, on an exception and on Ctrl-C.
        Its log is attached to the run either way; a failed start fails the run with it."""
        if not self.on_engine:
            yield None
            return
        from celine.serving.vllm_engine import VLLMEngine, vllm_version

        cfg, ecfg = self.cfg, self.cfg.engine
        if ecfg.base_url is not None:  # the replay times requests by the engine's step log
            raise ConfigError("engine.base_url", ecfg.base_url,
                              "null for llm_sched (its trace replay needs the engine Celine "
                              "starts)")  # fmt: skip
        tracker = getattr(self.ctx.tracker, "inner", self.ctx.tracker)
        if hasattr(tracker, "set_tags"):
            tracker.set_tags({"celine.engine": ecfg.name, "celine.engine_version": vllm_version()})
        eng = VLLMEngine(
            self.lm.path, work_dir=Path(self.ctx.run_dir) / "engine",
            max_num_seqs=cfg.max_num_seqs, max_num_batched_tokens=cfg.max_num_batched_tokens,
            max_model_len=ecfg.max_model_len or cfg.max_prompt_tokens + cfg.max_new_tokens,
            kv_cache_gib=int(ecfg.kv_cache_gib), omp_threads=ecfg.omp_threads
            or self.ctx.hardware.threads, dtype=ecfg.dtype, seed=cfg.sim_seed,
            prefix_caching=bool(ecfg.prefix_caching),
        )  # fmt: skip
        try:
            with eng:
                self.engine = eng
                yield eng
        finally:
            self.engine = None
            for path in (eng.log_path, eng.step_log):
                if path.is_file():
                    self.ctx.log_artifact(path, "engine")

    @property
    def cache_dir(self) -> Path:
        return Path(self.ctx.outputs_dir) / "cache" / "llm_sched"

    @cached_property
    def lm(self):
        return self.ctx.build_model()

    @cached_property
    def trace(self) -> pd.DataFrame:
        """All prompts with prompt_len, output_len and split (train/test)."""
        cfg = self.cfg
        if cfg.data_root:
            df = data.load_json_trace(cfg.data_root, cfg, self.lm.tokenizer)
        elif cfg.trace == "gold":
            df = data.gold_trace(cfg, self.lm.tokenizer)
        else:
            df = data.load_or_generate(cfg, self.lm, self.cache_dir, self.ctx.log)
        df = data.split(df, cfg.test_fraction, cfg.trace_seed)
        self.ctx.log_table("trace", df.drop(columns=["prompt"]))
        return df

    @cached_property
    def token_ids(self) -> list[list[int]]:
        enc = self.lm.tokenizer(self.trace["prompt"].tolist())["input_ids"]
        return [list(x) for x in enc]

    def split_ids(self, split: str):
        mask = (self.trace["split"] == split).to_numpy()
        ids = [s for s, m in zip(self.token_ids, mask, strict=True) if m]
        return ids, self.trace.loc[mask, "output_len"].to_numpy()

    @property
    def test(self) -> pd.DataFrame:
        return self.trace[self.trace["split"] == "test"].reset_index(drop=True)

    @cached_property
    def latency(self):
        """The latency model fitted to the served model's timed forward passes (measured once
        per model and settings, then reused so every method sees the same engine)."""
        from celine.serving import LatencyModel, fit_latency_model, measure_latency
        from celine.serving.latency import kv_bytes_per_token

        cfg = self.cfg
        settings = dict(model=str(Path(self.lm.path).name), device=self.ctx.hardware.device,
                        b=list(cfg.latency_batch_sizes), L=list(cfg.latency_prompt_lens),
                        r=cfg.latency_repeats)  # fmt: skip
        key = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
        path = self.cache_dir / f"latency-{key}.csv"
        if path.is_file():
            df = pd.read_csv(path)
            self.ctx.log.info("latency: using the measurements cached in %s", path)
        else:
            self.ctx.log.info("latency: timing prefill and decode of the served model")
            df = measure_latency(
                self.lm.model, batch_sizes=cfg.latency_batch_sizes,
                prompt_lens=cfg.latency_prompt_lens, device=self.ctx.hardware.device,
                repeats=cfg.latency_repeats,
            )  # fmt: skip
            path.parent.mkdir(parents=True, exist_ok=True)
            df.to_csv(path, index=False)
        model: LatencyModel = fit_latency_model(df)
        # swapping moves a token's KV over the host link: bytes per token / bandwidth
        dtype_bytes = 4 if self.ctx.hardware.dtype in ("float32", "auto") else 2
        kv_bytes = kv_bytes_per_token(self.lm.model.config, dtype_bytes)
        model = dataclasses.replace(model, c_swap=kv_bytes / (cfg.swap_bandwidth_gb_s * 1e9))
        df["fitted"] = [
            model.iteration_time(p, d, k)
            for p, d, k in zip(
                df["prefill_tokens"], df["decode_seqs"], df["kv_tokens"], strict=True
            )
        ]
        self.ctx.log_table("latency_measurements", df)
        self.ctx.log.info("latency model: %s", model.to_dict())
        self.ctx.log_metrics({f"latency/{k}": v for k, v in model.to_dict().items()})
        return model

    @cached_property
    def prompts(self) -> dict[int, list[int]]:
        from celine.experiments.llm_sched.engine import heldout_prompts

        return heldout_prompts(self)

    @cached_property
    def calibration(self) -> dict:
        """engine=vllm: the engine's saturated throughput and the simulator's latency model
        fitted to its steps (cached per machine and model)."""
        from celine.experiments.llm_sched.engine import calibrate

        if self.engine is None:
            raise RuntimeError("calibration needs the running engine (inside engine_session)")
        doc = calibrate(self, self.engine, self.prompts, self.ctx.log)
        self.ctx.log_metrics({f"engine_latency/{k}": v for k, v in doc["latency"].items()})
        self.ctx.log_metrics({"engine/capacity_rps": doc["capacity_rps"]})
        return doc

    @cached_property
    def workloads(self):
        from celine.experiments.llm_sched.serving import build_workloads

        if self.on_engine:
            workloads, info = build_workloads(self.cfg, self.test, None,
                                              capacity=self.calibration["capacity_rps"])  # fmt: skip
        else:
            workloads, info = build_workloads(self.cfg, self.test, self.latency)
        self.ctx.log.info("serving: capacity ~%.1f req/s; workloads %s",
                          info.attrs["capacity_rps"], list(workloads))  # fmt: skip
        self.ctx.log_metrics({"serving/capacity_rps": info.attrs["capacity_rps"]})
        return workloads, info

    def lm_embeddings(self):
        emb = self.lm.model.get_input_embeddings().weight.detach().float().cpu()
        return emb

    @property
    def vocab(self) -> int:
        return int(self.lm.model.get_input_embeddings().weight.shape[0])

    @property
    def pad_id(self) -> int:
        tok = self.lm.tokenizer
        return int(tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id)

    def prompt_lengths(self, split: str = "test") -> np.ndarray:
        return self.trace.loc[self.trace["split"] == split, "prompt_len"].to_numpy()

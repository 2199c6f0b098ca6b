"""The LLM substrate's model families and their typed configs (light: no torch here); importing
`celine.llm` registers them (core finds them through `registry.discover`, as it finds rooms).

`tiny_llama` and `tiny_reasoner` are transformers Llama models that Celine trains itself on its
built-in corpora and caches under outputs/models (trained on first use); `hf` is any local
Hugging Face causal LM checkpoint, loaded offline.
"""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from celine.errors import ConfigError
from celine.llm.corpora import CORPORA, LOCAL_CORPORA  # plain-Python module: no torch
from celine.registry import register_model
from celine.schema import existing_path, in_range, one_of

# Keep in step with celine.llm.tiny_llama.PRESETS (a test checks it); listed here so that
# validation does not import torch.
TINY_LLAMA_SIZES = ("smoke", "default", "gpu")


@dataclass
class TinyLlamaConfig:
    name: str = "tiny_llama"
    corpus: str = "code"
    data_root: str | None = None  # for local corpora: a folder or a .jsonl file
    size: str = "default"
    seed: int = 0  # the model's own training seed (a sweep over run seeds reuses one model)
    # None keeps the size preset's value (celine.llm.tiny_llama.PRESETS)
    steps: int | None = None
    batch_size: int | None = None
    seq_len: int | None = None
    lr: float | None = None
    vocab_size: int | None = None
    cache_dir: str | None = None  # None: <outputs>/models

    def __post_init__(self) -> None:
        one_of("model.size", self.size, TINY_LLAMA_SIZES)
        one_of("model.corpus", self.corpus, CORPORA)
        if self.corpus in LOCAL_CORPORA:
            if self.data_root is None:
                raise ConfigError(
                    "model.data_root", None, f"corpus {self.corpus} reads a local path"
                )
            existing_path("model.data_root", self.data_root)
        for key in ("steps", "batch_size", "seq_len", "vocab_size"):
            value = getattr(self, key)
            if value is not None:
                in_range(f"model.{key}", value, 1)
        if self.lr is not None and not self.lr > 0:
            raise ConfigError("model.lr", self.lr, "expected a learning rate above 0")
        if self.seq_len is not None:
            # the preset's position table bounds the training context (plain dataclasses: no torch)
            from celine.llm.tiny_llama import get_preset

            positions = get_preset(self.size, self.corpus).arch.max_positions
            if self.seq_len > positions:
                raise ConfigError(
                    "model.seq_len",
                    self.seq_len,
                    f"expected at most {positions}, the positions of model.size={self.size}",
                )


@dataclass
class HFModelConfig:
    name: str = "hf"
    path: str = MISSING  # a local folder with config.json and weights; nothing is downloaded
    trust_remote_code: bool = False

    def __post_init__(self) -> None:
        folder = existing_path("model.path", self.path, kind="dir")
        if folder is not None and not (folder / "config.json").is_file():
            raise ConfigError(
                "model.path",
                self.path,
                "expected a Hugging Face checkpoint folder with config.json",
            )


_TINY = "celine.llm.models:TinyLlamaConfig"
register_model(
    "tiny_llama",
    impl="celine.llm.builders:tiny_llama",
    config=_TINY,
    description="Llama trained by Celine on a built-in corpus (code by default), cached",
)
register_model(
    "tiny_reasoner",
    impl="celine.llm.builders:tiny_llama",
    config=_TINY,
    description="tiny_llama trained on generated arithmetic word problems with \\boxed{} answers",
)
register_model(
    "hf",
    impl="celine.llm.builders:hf",
    config="celine.llm.models:HFModelConfig",
    description="any local Hugging Face causal LM (model.path=/dir), offline",
)

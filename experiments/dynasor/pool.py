"""A pool of sampled chains per problem, generated once by the real model and replayed.

Self-consistency samples are independent given the problem, so replaying the first k chains of
a random order of the pool is distributed exactly like sampling k fresh chains: Dynasor and the
fixed-budget baseline then see the same chains (a paired comparison), and the CPU cost is paid
once. Each chain keeps its answer, its generated-token count and a reward in [0, 1].
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

POOL_FORMAT = 1


@dataclass
class ProblemPool:
    question: str
    answer: int | str  # the exact answer
    steps: int  # difficulty
    prompt_len: int  # prompt tokens
    answers: list  # parsed answer of each chain (None when it boxed nothing parsable)
    tokens: list[int]  # generated tokens of each chain
    rewards: list[float]  # reward of each chain in [0, 1]

    @property
    def units(self) -> int:
        """Chains a program can draw (a tree pool's units are whole searches)."""
        return len(self.answers)

    @property
    def correct(self) -> list[bool]:
        return [a is not None and a == self.answer for a in self.answers]


class RewardScorer(Protocol):
    """Scores finished chains in [0, 1] (a local reward model, or the reasoner itself)."""

    name: str

    def score(self, prompts: list[str], completions: list[str]) -> list[float]: ...


class LikelihoodReward:
    """The reasoner's own length-normalised likelihood of its chain: exp(mean log p) over the
    generated tokens, a score in (0, 1] that needs no second model."""

    name = "likelihood"

    def __init__(self, model, tokenizer, batch_size: int = 32) -> None:
        self.model, self.tok, self.batch_size = model, tokenizer, batch_size

    def score(self, prompts: list[str], completions: list[str]) -> list[float]:
        import torch

        out: list[float] = []
        device = next(self.model.parameters()).device
        for i in range(0, len(prompts), self.batch_size):
            p_ids = [self.tok(p)["input_ids"] for p in prompts[i : i + self.batch_size]]
            c_ids = [
                self.tok(c, add_special_tokens=False)["input_ids"]
                for c in completions[i : i + self.batch_size]
            ]
            seqs = [p + c for p, c in zip(p_ids, c_ids, strict=True)]
            width = max(len(s) for s in seqs)
            pad = self.tok.pad_token_id or 0
            ids = torch.tensor([s + [pad] * (width - len(s)) for s in seqs], device=device)
            mask = torch.tensor([[1] * len(s) + [0] * (width - len(s)) for s in seqs])
            with torch.no_grad():
                logp = torch.log_softmax(
                    self.model(input_ids=ids, attention_mask=mask.to(device)).logits.float(), -1
                )
            for row, (p, c) in enumerate(zip(p_ids, c_ids, strict=True)):
                if not c:
                    out.append(0.0)
                    continue
                pos = torch.arange(len(p) - 1, len(p) + len(c) - 1)
                tok_lp = logp[row, pos, torch.tensor(c, device=device)]
                out.append(float(math.exp(tok_lp.mean().item())))
        return out


class LocalRewardModel:
    """A local Hugging Face sequence-classification checkpoint as the reward model (the
    paper's Skywork/Llemma reward models play this role): sigmoid of its score."""

    name = "local_reward_model"

    def __init__(self, path: str, device: str = "cpu", batch_size: int = 8) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, local_files_only=True
        ).to(device)
        self.model.eval()
        self.device, self.batch_size = device, batch_size

    def score(self, prompts: list[str], completions: list[str]) -> list[float]:
        import torch

        out: list[float] = []
        texts = [p + c for p, c in zip(prompts, completions, strict=True)]
        for i in range(0, len(texts), self.batch_size):
            enc = self.tok(texts[i : i + self.batch_size], return_tensors="pt", padding=True)
            with torch.no_grad():
                logits = self.model(**enc.to(self.device)).logits.float()
            # one logit: sigmoid; several classes: probability of the last ("good") class
            probs = (
                torch.sigmoid(logits[:, 0]) if logits.shape[1] == 1 else logits.softmax(-1)[:, -1]
            )
            out.extend(float(p) for p in probs)
        return out


def sample_pool(
    model,
    tokenizer,
    problems,
    *,
    pool_size: int,
    temperature: float,
    top_p: float,
    max_new_tokens: int,
    seed: int,
    batch_size: int,
    scorer: RewardScorer,
    log=None,
) -> list[ProblemPool]:
    """Sample `pool_size` chains for every problem with the real model (KV-cached
    generation), parse their answers and score them."""
    from celine.llm.evaluate import generate
    from celine.llm.reasoning import format_prompt, parse_boxed, parse_boxed_str

    pools: list[ProblemPool] = []
    chunk = max(1, 256 // pool_size)  # problems per generate call: progress every chunk
    for start in range(0, len(problems), chunk):
        group = problems[start : start + chunk]
        prompts = [format_prompt(p) for p in group for _ in range(pool_size)]
        gens = generate(
            model,
            tokenizer,
            prompts,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            top_p=top_p,
            seed=seed * 100_003 + start,
            batch_size=batch_size,
        )
        rewards = scorer.score(prompts, [g.text for g in gens])
        for j, p in enumerate(group):
            rows = gens[j * pool_size : (j + 1) * pool_size]
            parse = parse_boxed if isinstance(p.answer, int) else parse_boxed_str
            pools.append(
                ProblemPool(
                    question=p.question,
                    answer=p.answer,
                    steps=p.steps,
                    prompt_len=len(tokenizer(format_prompt(p))["input_ids"]),
                    answers=[parse(g.text) for g in rows],
                    tokens=[len(g.token_ids) + int(g.stopped) for g in rows],  # eos counts
                    rewards=rewards[j * pool_size : (j + 1) * pool_size],
                )
            )
        if log is not None:
            log.info("sampled %d/%d problems x %d chains", len(pools), len(problems), pool_size)
    return pools


def pool_key(**parts) -> str:
    text = json.dumps({"format": POOL_FORMAT, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def save_pool(path: Path, pools: list[ProblemPool]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps([asdict(p) for p in pools]))
    tmp.replace(path)


def load_pool(path: Path) -> list[ProblemPool]:
    return [ProblemPool(**row) for row in json.loads(Path(path).read_text())]

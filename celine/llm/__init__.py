"""Celine's LLM substrate: corpora, tokenizers, a tiny Llama, training, caching, eval.

Import-light on purpose (no torch at import time); import the module you need:

  celine.llm.corpora     load_corpus(name, root, seed, **opts) -> CorpusSplits
                         (code, reasoning, text_dir, jsonl, gsm8k, math)
  celine.llm.reasoning   generated multi-step arithmetic word problems, Problem,
                         format_prompt / format_solution, parse_boxed, parse_gsm8k_answer
  celine.llm.tokenizer   byte-level BPE training -> PreTrainedTokenizerFast
  celine.llm.tiny_llama  size presets (architecture + training recipe), build_model,
                         tiny_test_model for unit tests
  celine.llm.train       the training loop (AdamW, cosine, eval, resumable checkpoints)
  celine.llm.cache       TinyLlamaSpec, get_or_train (cached by a hash of the spec),
                         load_trained
  celine.llm.hf          load_local_causal_lm: any local Hugging Face causal LM, offline
  celine.llm.evaluate    perplexity, unigram_perplexity, generate (KV cache, greedy or
                         sampled), reasoning_accuracy
"""

from celine.llm import models as _models  # noqa: E402,F401  (registers tiny_llama, tiny_reasoner, hf)

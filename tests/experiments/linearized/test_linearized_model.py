"""The linearized Llama: swap, causality, zero-init, and greedy speculative == greedy."""

import copy

import pytest
import torch

from celine.experiments.linearized import decoding as D
from celine.experiments.linearized.finetune import truncated_draft
from celine.experiments.linearized.linear_llama import attention_modules, linearize
from celine.llm.tiny_llama import tiny_test_model

VARIANTS = ["softmax", "local", "global", "augmented"]


@pytest.fixture(scope="module")
def base():
    model, tok = tiny_test_model()
    return model.double(), tok


def _linear(base, variant, chunk=4, seed=0, trained=True):
    """A linearized copy; `trained` gives the conv and the mix non-zero values, as after
    fine-tuning (at init they are zero and would hide bugs in their code paths)."""
    model = linearize(copy.deepcopy(base[0]), variant, chunk=chunk)
    if trained:
        g = torch.Generator().manual_seed(seed)
        for a in attention_modules(model):
            a.conv_weight.data = 0.3 * torch.randn(a.conv_weight.shape, generator=g).double()
            a.global_factor.data.fill_(0.5)
    return model.eval()


def _ids(tok, text="def add(a, b):\n    return a + b\nfor i in range(10):\n"):
    return torch.tensor([tok.encode(text)])


def test_softmax_variant_reproduces_the_original_model(base):
    ids = _ids(base[1])
    with torch.no_grad():
        ref = base[0](input_ids=ids).logits
        out = _linear(base, "softmax")(input_ids=ids).logits
    torch.testing.assert_close(out, ref)


@pytest.mark.parametrize("masked", [True, False])
def test_whole_model_is_causal_only_with_the_masked_conv(base, masked):
    model = _linear(base, "augmented")
    for a in attention_modules(model):
        a.variant = type(a.variant)(global_=True, conv=True, conv_mask=masked)
    ids = _ids(base[1])
    t = ids.shape[1] // 2
    other = ids.clone()
    other[0, t + 1 :] = (other[0, t + 1 :] + 7) % 300
    with torch.no_grad():
        a = model(input_ids=ids).logits[0, : t + 1]
        b = model(input_ids=other).logits[0, : t + 1]
    assert torch.equal(a, b) is masked


def test_augmented_at_initialisation_is_exactly_local_only(base):
    ids = _ids(base[1])
    with torch.no_grad():
        aug = _linear(base, "augmented", trained=False)(input_ids=ids).logits
        local = _linear(base, "local", trained=False)(input_ids=ids).logits
    assert torch.equal(aug, local)


@pytest.mark.parametrize("variant", VARIANTS[1:])
def test_recurrent_decoding_matches_the_chunked_forward(base, variant):
    """Prefill + single-token steps through the state give the full-sequence logits
    (prompt length not a multiple of the chunk; steps cross chunk boundaries)."""
    model = _linear(base, variant)
    ids = _ids(base[1])
    dec = D.Decoder(model)
    states = dec.new_states()
    with torch.no_grad():
        full = model(input_ids=ids).logits[0]
        split = 5
        steps = [dec.logits(dec.prefill(ids[:, :split], states))[0]]
        for i in range(split, ids.shape[1]):
            tree = D.Tree(ids[0, i : i + 1].tolist(), [-1], ids.device)
            h, plan = dec.verify(tree, states)
            dec.commit(plan, [0])
            steps.append(dec.logits(h)[0])
    torch.testing.assert_close(torch.cat(steps), full, rtol=1e-9, atol=1e-9)
    assert states[0].k.shape[-2] == ids.shape[1] % 4  # constant state: only the open chunk


@pytest.mark.parametrize("variant", VARIANTS)
def test_greedy_speculative_decoding_equals_greedy_decoding(base, variant):
    model = _linear(base, variant)
    tok = base[1]
    prompt = _ids(tok, "for i in range(10):\n    print(")
    n = 24
    reference = D.greedy_reference(model, prompt, n)
    heads = D.MedusaHeads(model.config.hidden_size, model.lm_head, 3).double()
    g = torch.Generator().manual_seed(1)
    for p in heads.parameters():  # random heads: mostly wrong guesses, some right ones
        p.data += 0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype)
    draft = truncated_draft(model, 1)
    for drafter in (None, D.MedusaDraft(heads, tree_size=20, topk=3), D.ModelDraft(draft, 3)):
        stats = D.generate(model, prompt, n, drafter)
        assert stats.tokens == reference
        assert min(stats.accepted) >= 1 and sum(stats.accepted) >= n


def test_state_after_speculation_equals_state_of_the_accepted_prefix(base):
    """Rollback: rejected tree nodes never reach S, the open chunk or the conv buffer."""
    model = _linear(base, "augmented")
    prompt = _ids(base[1], "for i in range(10):\n    print(")
    dec = D.Decoder(model)
    heads = D.MedusaHeads(model.config.hidden_size, model.lm_head, 3).double()
    drafter = D.MedusaDraft(heads, tree_size=20, topk=3)
    states = dec.new_states()
    with torch.no_grad():
        hidden = dec.prefill(prompt, states)[0, -1]
        root, out = int(dec.logits(hidden).argmax()), []
        for _ in range(6):
            (tree,) = drafter.propose([0], [root], hidden[None])
            h, plan = dec.verify(tree, states)
            pred = dec.logits(h[0]).argmax(-1).tolist()
            path = D.accept_greedy(tree, pred)
            dec.commit(plan, path)
            out += [tree.token_list[i] for i in path]
            hidden, root = h[0, path[-1]], pred[path[-1]]
        fresh = dec.new_states()
        dec.prefill(torch.cat([prompt, torch.tensor([out])], dim=1), fresh)
    for a, b in zip(states, fresh, strict=True):
        assert a.length == b.length
        for x, y in ((a.S, b.S), (a.k, b.k), (a.v, b.v), (a.conv_v, b.conv_v)):
            torch.testing.assert_close(x, y, rtol=1e-9, atol=1e-9)


def test_tree_template_is_prefix_closed_and_sized():
    paths = D.tree_template(topk=4, depth=4, size=63)
    assert len(paths) == 63 and len(set(paths)) == 63
    have = {()} | set(paths)
    assert all(p[:-1] in have for p in paths)
    assert paths[0] == (0,)


@pytest.mark.parametrize("mode", ["full", "lora"])
def test_finetuning_trains_the_new_parameters_and_returns_a_plain_model(base, mode):
    """LoRA (peft) on q/k/v/o plus embeddings, norms, conv and mix; merged back at the end."""
    import numpy as np

    from celine.experiments.linearized.config import LinearizedConfig
    from celine.experiments.linearized.finetune import finetune

    model = _linear(base, "augmented", trained=False).float()
    cfg = LinearizedConfig(finetune=mode, steps=3, batch_size=2, warmup=1, lr=1e-2)
    stream = np.random.default_rng(0).integers(0, 300, 2000).astype(np.int32)
    tuned, loss = finetune(model, stream, cfg, seq_len=16, seed=0, on_log=lambda s, m: None)
    assert np.isfinite(loss)
    assert type(tuned).__name__ == "LlamaForCausalLM"
    attn = attention_modules(tuned)
    assert all(a.conv_weight.abs().sum() > 0 and a.global_factor != 0 for a in attn)
    assert all(type(a.q_proj).__name__ == "Linear" for a in attn)


@pytest.mark.parametrize("variant", ["softmax", "augmented"])
def test_batch4_speculative_decoding_equals_per_prompt_greedy(base, variant):
    """Ragged prompts, ragged acceptance: each row of a batch of 4 equals its own greedy
    decoding by full recomputation, for Medusa trees and the draft model."""
    model = _linear(base, variant)
    tok = base[1]
    texts = ["for i in range(10):\n    print(", "def add(a, b):", "x = [1, 2, 3]\n", "if a:"]
    prompts = [_ids(tok, t) for t in texts]
    assert len({p.shape[1] for p in prompts}) > 1
    n = 16
    reference = [D.greedy_reference(model, p, n) for p in prompts]
    heads = D.MedusaHeads(model.config.hidden_size, model.lm_head, 3).double()
    g = torch.Generator().manual_seed(2)
    for p in heads.parameters():
        p.data += 0.05 * torch.randn(p.shape, generator=g, dtype=p.dtype)
    draft = truncated_draft(model, 1)
    for drafter in (None, D.MedusaDraft(heads, tree_size=20, topk=3), D.ModelDraft(draft, 3)):
        stats = D.generate_batch(model, prompts, n, drafter)
        assert [s.tokens for s in stats] == reference
        if drafter is not None:  # rows really advanced by different amounts at some step
            steps = [s.accepted for s in stats]
            assert any(len({row[i] for row in steps if i < len(row)}) > 1 for i in range(n))


def test_tree_from_measured_accuracy_follows_the_heads():
    """A head that is never right at rank 0 but always at rank 1 moves the tree to rank 1."""
    acc = [[0.05, 0.9, 0.02], [0.6, 0.1, 0.05]]
    paths = D.tree_template(topk=3, depth=2, size=4, accuracy=acc)
    assert paths == [(0,), (1,), (1, 0), (1, 1)]
    assert D.tree_template(topk=3, depth=2, size=4)[0] == (0,)  # the prior prefers rank 0


@pytest.mark.gpu
@pytest.mark.parametrize("variant", ["local", "global", "augmented"])
def test_gpu_inference_through_the_prefill_kernel_equals_the_chunked_form(base, variant):
    """On a GPU without autograd the layers call the Triton prefill kernel: the same logits as
    the eager chunked form (run with autograd on), fp32 on both sides, over 2+ chunks of 64 with
    the 31-tap causal conv."""
    from celine.kernels.linear_prefill import prefill_supported

    model = _linear((base[0].float(), base[1]), variant, chunk=64).float().cuda()
    assert all(prefill_supported(a.head_dim, a.chunk, a.half) for a in attention_modules(model))
    ids = torch.randint(0, 300, (2, 150), generator=torch.Generator().manual_seed(1)).cuda()
    with torch.no_grad():
        fused = model(input_ids=ids).logits
    with torch.enable_grad():
        eager = model(input_ids=ids).logits.detach()
    torch.testing.assert_close(fused, eager, atol=1e-4, rtol=1e-4)

import pytest


@pytest.fixture(scope="session")
def tiny():
    """(model, tokenizer): the random-init 2-layer test Llama in float32, no training."""
    from celine.llm.tiny_llama import tiny_test_model

    model, tok = tiny_test_model()
    return model.float().eval(), tok


PROMPTS = [
    "def add(a, b):\n    return",
    "for i in range(10):",
    "Q: Ann has 17 pens. Ann gets 14 more.",
    "print(add(1, 2))\n",
    "A: 17+14=31.",
]


@pytest.fixture(scope="session")
def prompts(tiny):
    _, tok = tiny
    return [tok(t)["input_ids"] for t in PROMPTS]

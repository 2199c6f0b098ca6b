"""Triton kernels, installed as `celine.kernels`, each beside a plain PyTorch reference."""

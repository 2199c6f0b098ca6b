"""The storage format of ShiftAddLLM weights, shared by the Triton kernel and its reference.

A q-bit weight `W [N, K]` is `sum_b alpha_b * B_b` with `B_b in {-1, +1}^{N x K}`:

- binary planes: int32 `[q, K/32, N]`; bit t of word `[b, j, n]` is column 32*j + t of row n, and
  a set bit means +1 (so byte i of a word is the 8-bit LUT key of columns 32*j + 8*i ... + 7).
  Rows are the contiguous axis, so the 32 lanes of a warp read 32 rows' words in one transaction
  and look up the same table;
- scales: int32 codes `[K/col_group, N/row_group, q]`; each code holds up to three APoT terms,
  one per byte: 0 = no term, else bit 7 = sign (1: negative) and bits 0-6 = exponent + 64. So a
  scale is `sum_t s_t * 2**e_t` exactly, and multiplying by it is at most three shifts.
"""

from __future__ import annotations

import torch

EXP_BIAS = 64  # a term's byte stores exponent + 64, so exponents -63..63 are representable
MAX_TERMS = 3  # three bytes used of the int32 code (the reference's `apot_nums` default)


# `decode_apot` below as a CUDA device function, for the kernels that read the codes on the GPU
APOT_DECODE_CUDA = r"""__device__ __forceinline__ float decode_apot(int code) {
  float v = 0.f;
  #pragma unroll
  for (int t = 0; t < MAX_TERMS_CUDA; ++t) {
    int byte = (code >> (8 * t)) & 255;
    int mag = byte & 127;
    if (mag) {
      float p = __int_as_float((mag - EXP_BIAS_CUDA + 127) << 23);
      v += (byte >> 7) ? -p : p;
    }
  }
  return v;
}
""".replace("MAX_TERMS_CUDA", str(MAX_TERMS)).replace("EXP_BIAS_CUDA", str(EXP_BIAS))


def pack_planes(signs: torch.Tensor) -> torch.Tensor:
    """`signs [q, N, K]` of +-1 (or bool, True = +1) -> int32 `[q, K/32, N]`."""
    q, n, k = signs.shape
    if k % 32:
        raise ValueError(f"in_features K={k} must be a multiple of 32 to pack binary planes")
    bits = (signs > 0).to(torch.int64).reshape(q, n, k // 32, 32)
    words = (bits << torch.arange(32, dtype=torch.int64, device=signs.device)).sum(-1)
    words = torch.where(words >= 2**31, words - 2**32, words)  # two's complement int32
    return words.to(torch.int32).transpose(1, 2).contiguous()


def unpack_planes(planes: torch.Tensor) -> torch.Tensor:
    """int32 `[q, K/32, N]` -> float `[q, N, K]` of +-1."""
    planes = planes.transpose(1, 2)
    q, n, kw = planes.shape
    shifts = torch.arange(32, dtype=torch.int64, device=planes.device)
    bits = (planes.to(torch.int64)[..., None] >> shifts) & 1
    return (2.0 * bits - 1.0).reshape(q, n, kw * 32)


def encode_apot(signs: torch.Tensor, exps: torch.Tensor) -> torch.Tensor:
    """Terms `signs, exps [..., T]` (sign in {-1, 0, +1}, integer exponent) -> int32 codes."""
    if signs.shape[-1] > MAX_TERMS:
        raise ValueError(f"at most {MAX_TERMS} APoT terms fit a code, got {signs.shape[-1]}")
    e = exps.to(torch.int64)
    used = signs != 0
    if bool(((e.abs() > EXP_BIAS - 1) & used).any()):
        raise ValueError("an APoT exponent is outside -63..63")
    byte = torch.where(used, (e + EXP_BIAS) | ((signs < 0).to(torch.int64) << 7), 0)
    code = (byte << (8 * torch.arange(byte.shape[-1], device=byte.device))).sum(-1)
    return code.to(torch.int32)


def decode_apot(codes: torch.Tensor) -> torch.Tensor:
    """int32 codes -> float32 scales `sum_t s_t 2**e_t` (exact in fp32)."""
    c = codes.to(torch.int64)
    out = torch.zeros(codes.shape, dtype=torch.float32, device=codes.device)
    for t in range(MAX_TERMS):
        byte = (c >> (8 * t)) & 255
        mag = byte & 127
        sign = torch.where(byte >> 7 == 1, -1.0, 1.0)
        term = sign * torch.exp2((mag - EXP_BIAS).to(torch.float32))
        out = out + torch.where(mag == 0, 0.0, term)
    return out


def dequantize(planes: torch.Tensor, codes: torch.Tensor, col_group: int, row_group: int):
    """The dense float32 weight `[N, K]` that (planes, codes) stand for."""
    signs = unpack_planes(planes)  # [q, N, K]
    q, n, k = signs.shape
    alpha = decode_apot(codes)  # [Kg, Ng, q]
    per_weight = alpha.repeat_interleave(col_group, 0).repeat_interleave(row_group, 1)
    per_weight = per_weight[:k, :n].permute(2, 1, 0)  # [q, N, K]
    return (signs * per_weight).sum(0)


def packed_bytes(n: int, k: int, q: int, col_group: int, row_group: int) -> int:
    """Bytes the format occupies: q bits per weight plus one int32 code per (group, bit)."""
    groups = -(-k // col_group) * -(-n // row_group)
    return n * k * q // 8 + 4 * groups * q

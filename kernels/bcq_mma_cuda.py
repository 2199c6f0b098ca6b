"""A tensor-core GEMV for ShiftAddLLM weights, batch 1 (CUDA, GPU only; issue #28).

The same product as `lut4_cuda.py`, `y = x @ W.T` with `W = sum_b alpha_b B_b` and
`B_b in {-1, +1}`, computed with integer `mma.sync` (m16n8k32, s8 x s8 -> s32) instead of table
lookups. The LUT kernel is bound by its shared-memory lookups (one 4-byte load per nibble and
plane) and pays a split-K workspace, atomics and a second kernel on every call. Here:

- A is the planes as read: bit i of each byte of a repacked word, masked in place
  (`w & (0x01010101 << i)`, one LOP3 per 4 weights, no shifts), is the int8 `b 2^i` (`-128 b`
  for i = 7). `repack_planes` puts each lane's bits where its A fragments need them: column
  `k = 128 c + 32 s + 16 h + 4 tig + e` at bit `8 e + i`, `i = 2 s + h`.
- B carries x and the scales in fixed point: `u_k = rint(2 alpha x_k 2^(E - i(k)))` (negated
  for i = 7), so `A u = b 2 alpha x 2^E` whatever i is, split into three signed 8-bit digits,
  one per column n of the B fragment (the columns a GEMV would waste). The block's row group
  gives one alpha per (plane, 8 columns); E puts the block's largest `2 alpha x` just under
  2^22, so every product keeps at least 15 significant bits (22 less i) and the int32 sums are
  exact (|C| < 2^31 while K x q < 131072).
- `y = (2 sum_d 256^d C_d - sum_k u_k 2^i) / 2^(E+1)`: the +-1 planes as {0, 1} bits, corrected
  by the sum of the same rounded u (computed while B is built).

A block is 8 warps on R consecutive 32-row blocks of one row group (B built once for all of
them); each warp takes every 8th 128-column chunk of each and streams them through a ring of
DEPTH chunks. The first DEPTH chunks are requested and the scales decoded before the block waits
(PDL) for the kernel that wrote x. One kernel, no split-K workspace, the output written once.

Measured on an H200 (bench/shiftadd/mma_gemv_bench.py, bench/shiftadd/h200_mma_gemv/): 0.53-0.92x
the LUT-4 kernel's speed on the Llama-7B layer shapes, so `ShiftAddLinear` keeps the LUT-4 kernel;
this one stays as the measured alternative (experiments/shiftadd/README.md says where its time
goes).
"""

from __future__ import annotations

import functools

import torch

from celine.kernels.cuda_build import build_extension
from celine.kernels.gemv_checks import require
from celine.kernels.shiftadd_format import APOT_DECODE_CUDA

CHUNK = 128  # columns of K per lane word (4 mma k-steps of 32)
ROWS = 32  # rows per block: two 16-row mma tiles
WARPS = 8

CUDA_SRC = (
    r"""
#include <torch/extension.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <ATen/cuda/CUDAContext.h>

#define WARPS 8

__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ __half from_f(float v, __half) { return __float2half_rn(v); }
__device__ __forceinline__ __nv_bfloat16 from_f(float v, __nv_bfloat16) {
  return __float2bfloat16_rn(v);
}

"""
    + APOT_DECODE_CUDA
    + r"""
__device__ __forceinline__ void mma(int (&c)[4], unsigned a0, unsigned a1, unsigned a2,
                                    unsigned a3, unsigned b0, unsigned b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
      "{%8,%9}, {%0,%1,%2,%3};"
      : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}

// the int8 b 2^i of the 4 bytes of w at bit i: one LOP3 (AND with an immediate)
#define A_REG(w, i) ((w) & (0x01010101u << (i)))

// low byte of v as a signed digit, and v with it taken away, shifted down a digit
__device__ __forceinline__ int low_digit(int v) { return (v << 24) >> 24; }

// packed: int4 [N/32][C][Q][32 lanes]; lane (g, tig) = 4 g + tig holds the words of rows
// g, g + 8 of tile 0 and g, g + 8 of tile 1 (rows 16 t + 8 hh + g of the 32-row block).
// Shared memory: B digits [Q][C][4 s][3 d][4 tig][2 h] u32, scales [Q][C * 16] f32,
// partial sums [R][32 rows][3 digits] s32, reduction scratch.
template <typename XT, int Q, int DEPTH>
__global__ void __launch_bounds__(WARPS * 32) bcq_mma_gemv_kernel(
    const XT* __restrict__ x, const int4* __restrict__ packed, const int* __restrict__ codes,
    XT* __restrict__ y, int K, int C, int NG, int row_group, int col_group, int R) {
  extern __shared__ __align__(16) unsigned smem[];
  unsigned* Bs = smem;
  float* alpha = reinterpret_cast<float*>(Bs + Q * C * 96);
  int* red = reinterpret_cast<int*>(alpha + Q * C * 16);
  float* fscr = reinterpret_cast<float*>(red + R * 96);  // [WARPS] max|alpha|, [WARPS] max|x|
  double* dscr = reinterpret_cast<double*>(fscr + 2 * WARPS + 2);  // [WARPS] sum u 2^i
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int grp = blockIdx.y, rb_group = row_group / 32;
  const int nb0 = grp * rb_group + blockIdx.x * R;
  const int nr = min(R, rb_group - blockIdx.x * R);  // 32-row blocks of this block
  const int n_mine = (C - warp + WARPS - 1) / WARPS;  // chunks warp, warp + 8, ... of each
  const int4* src = packed + lane;

  // The weights and scales do not depend on the previous kernel: the first DEPTH chunks are
  // requested and the scales decoded before this block waits for it (PDL).
  // slot d of the ring holds chunk slot_c[d] of row block slot_r[d] (>= nr: nothing); (pr, pj)
  // is the next one to request, so the loop below needs no division
  int4 buf[DEPTH][Q];
  int slot_r[DEPTH], slot_c[DEPTH];
  int pr = n_mine > 0 ? 0 : nr, pj = 0;
  const int4* pf = src + ((size_t)nb0 * C + warp) * Q * 32;  // chunk (pr, pj)
  #pragma unroll
  for (int d = 0; d < DEPTH; ++d) {
    slot_r[d] = pr; slot_c[d] = warp + WARPS * pj;
    #pragma unroll
    for (int p = 0; p < Q; ++p) buf[d][p] = pr < nr ? __ldcs(pf + p * 32) : make_int4(0, 0, 0, 0);
    pf += WARPS * Q * 32;
    if (++pj == n_mine) { pj = 0; ++pr; pf = src + ((size_t)(nb0 + pr) * C + warp) * Q * 32; }
  }
  for (int e = threadIdx.x; e < R * 96; e += WARPS * 32) red[e] = 0;
  const int n_cb = C * 16, k_blocks = K / 8;
  float amax = 0.f;
  for (int u = threadIdx.x; u < Q * n_cb; u += WARPS * 32) {
    const int p = u / n_cb, cb = u - p * n_cb;
    const float a = cb < k_blocks ? decode_apot(codes[((cb * 8 / col_group) * NG + grp) * Q + p])
                                  : 0.f;
    alpha[u] = a;
    amax = fmaxf(amax, fabsf(a));
  }
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  float xmax = 0.f;
  for (int cb = threadIdx.x; cb < k_blocks; cb += WARPS * 32) {
    const int4 xv = *reinterpret_cast<const int4*>(x + (size_t)cb * 8);
    const XT* xe = reinterpret_cast<const XT*>(&xv);
    #pragma unroll
    for (int t = 0; t < 8; ++t) xmax = fmaxf(xmax, fabsf(to_f(xe[t])));
  }
  #pragma unroll
  for (int o = 16; o; o >>= 1) {
    amax = fmaxf(amax, __shfl_xor_sync(0xffffffffu, amax, o));
    xmax = fmaxf(xmax, __shfl_xor_sync(0xffffffffu, xmax, o));
  }
  if (lane == 0) { fscr[warp] = amax; fscr[WARPS + warp] = xmax; }
  __syncthreads();
  amax = 0.f; xmax = 0.f;
  #pragma unroll
  for (int w = 0; w < WARPS; ++w) { amax = fmaxf(amax, fscr[w]); xmax = fmaxf(xmax, fscr[WARPS + w]); }
  // E: the largest 2 alpha x of the block (bounded by 2 amax xmax) just under 2^22
  int ex = 0;
  const float m = 2.f * amax * xmax;
  if (m > 0.f) frexpf(m, &ex);
  const int E = min(max(22 - ex, -100), 100);

  // B digits. Unit (plane p, 8-column block cb): chunk cb / 16, then within it 4 s + 2 h + tp
  // (tig 2 tp, 2 tp + 1; e 0..3), so every column of a unit has the same i = 2 s + h.
  long long usum = 0;
  for (int u = threadIdx.x; u < Q * n_cb; u += WARPS * 32) {
    const int p = u / n_cb, cb = u - p * n_cb, c = cb >> 4, w16 = cb & 15;
    const int s = w16 >> 2, h = (w16 >> 1) & 1, tp = w16 & 1, i = w16 >> 1;
    int4 xv = make_int4(0, 0, 0, 0);
    if (cb < k_blocks) xv = *reinterpret_cast<const int4*>(x + (size_t)cb * 8);
    const XT* xe = reinterpret_cast<const XT*>(&xv);
    // 2 alpha 2^(E - i), negated for i = 7 (where the A byte reads -128 b)
    const float sc = alpha[u] * ldexpf(i == 7 ? -2.f : 2.f, E - i);
    unsigned* dst = Bs + (((p * C + c) * 4 + s) * 3) * 8 + h;
    int part = 0;
    #pragma unroll
    for (int tl = 0; tl < 2; ++tl) {
      int d0[4], d1[4], d2[4];
      #pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int v = __float2int_rn(sc * to_f(xe[4 * tl + e]));
        part += v;
        d0[e] = low_digit(v);
        const int r1 = (v - d0[e]) >> 8;
        d1[e] = low_digit(r1);
        d2[e] = (r1 - d1[e]) >> 8;
      }
      const int t = 2 * tp + tl;
      dst[(0 * 4 + t) * 2] = __byte_perm(__byte_perm(d0[0], d0[1], 0x0040), __byte_perm(d0[2], d0[3], 0x0040), 0x5410);
      dst[(1 * 4 + t) * 2] = __byte_perm(__byte_perm(d1[0], d1[1], 0x0040), __byte_perm(d1[2], d1[3], 0x0040), 0x5410);
      dst[(2 * 4 + t) * 2] = __byte_perm(__byte_perm(d2[0], d2[1], 0x0040), __byte_perm(d2[2], d2[3], 0x0040), 0x5410);
    }
    // sum_k u_k 2^i with the sign folded into u: the A value is +-2^i b, so A u = b |2^i u|
    usum += (long long)part * (i == 7 ? -128 : (1 << i));
  }
  double dsum = (double)usum;
  #pragma unroll
  for (int o = 16; o; o >>= 1) dsum += __shfl_xor_sync(0xffffffffu, dsum, o);
  if (lane == 0) dscr[warp] = dsum;
  __syncthreads();

  int acc[Q][2][4];
  #pragma unroll
  for (int p = 0; p < Q; ++p)
    #pragma unroll
    for (int t = 0; t < 2; ++t)
      #pragma unroll
      for (int v = 0; v < 4; ++v) acc[p][t][v] = 0;
  // lane (g, tig) reads digit g % 3 (columns 3..7 of C repeat 0..2)
  const uint2* Bl = reinterpret_cast<const uint2*>(Bs) + (g % 3) * 4 + tig;
  while (slot_r[0] < nr) {
    #pragma unroll
    for (int d = 0; d < DEPTH; ++d) {
      const int r = slot_r[d], c = slot_c[d];
      if (r < nr) {
        #pragma unroll
        for (int p = 0; p < Q; ++p) {
          const unsigned w0 = buf[d][p].x, w1 = buf[d][p].y, w2 = buf[d][p].z, w3 = buf[d][p].w;
          const uint2* bp = Bl + (p * C + c) * 48;
          #pragma unroll
          for (int s = 0; s < 4; ++s) {
            const uint2 b = bp[s * 12];
            mma(acc[p][0], A_REG(w0, 2 * s), A_REG(w1, 2 * s), A_REG(w0, 2 * s + 1),
                A_REG(w1, 2 * s + 1), b.x, b.y);
            mma(acc[p][1], A_REG(w2, 2 * s), A_REG(w3, 2 * s), A_REG(w2, 2 * s + 1),
                A_REG(w3, 2 * s + 1), b.x, b.y);
          }
          if (pr < nr) buf[d][p] = __ldcs(pf + p * 32);
        }
        slot_r[d] = pr; slot_c[d] = warp + WARPS * pj;
        if (pr < nr) {
          pf += WARPS * Q * 32;
          if (++pj == n_mine) { pj = 0; ++pr; pf = src + ((size_t)(nb0 + pr) * C + warp) * Q * 32; }
        }
        if (c + WARPS >= C) {  // this warp's last chunk of row block r: hand its sums over
          // c0, c1: row g, columns 2 tig, 2 tig + 1; c2, c3: row g + 8 (column = digit)
          if (tig < 2) {
            #pragma unroll
            for (int t = 0; t < 2; ++t) {
              int s0 = 0, s1 = 0, s2 = 0, s3 = 0;
              #pragma unroll
              for (int p = 0; p < Q; ++p) {
                s0 += acc[p][t][0]; s1 += acc[p][t][1]; s2 += acc[p][t][2]; s3 += acc[p][t][3];
              }
              int* rr = red + r * 96;
              const int row0 = 16 * t + g, row8 = row0 + 8, dg = 2 * tig;
              atomicAdd(rr + row0 * 3 + dg, s0);
              atomicAdd(rr + row8 * 3 + dg, s2);
              if (dg + 1 < 3) { atomicAdd(rr + row0 * 3 + dg + 1, s1); atomicAdd(rr + row8 * 3 + dg + 1, s3); }
            }
          }
          #pragma unroll
          for (int p = 0; p < Q; ++p)
            #pragma unroll
            for (int t = 0; t < 2; ++t)
              #pragma unroll
              for (int v = 0; v < 4; ++v) acc[p][t][v] = 0;
        }
      }
    }
  }
  __syncthreads();
  double dtot = 0.0;
  #pragma unroll
  for (int w = 0; w < WARPS; ++w) dtot += dscr[w];
  const double inv = ldexp(1.0, -E - 1);
  for (int e = threadIdx.x; e < nr * 32; e += WARPS * 32) {
    const int* rr = red + e * 3;
    const double ctot = (double)rr[0] + 256.0 * rr[1] + 65536.0 * rr[2];
    y[(size_t)nb0 * 32 + e] = from_f((float)((2.0 * ctot - dtot) * inv), XT());
  }
}

void bcq_mma_gemv(torch::Tensor x, torch::Tensor packed, torch::Tensor codes, torch::Tensor y,
                  int64_t q, int64_t col_group, int64_t row_group, int64_t depth, int64_t R) {
  const int K = x.size(1), C = packed.size(1), NG = codes.size(1);
  const int rb_group = row_group / 32;
  const size_t smem = (size_t)q * C * (96 + 16) * 4 + (size_t)R * 96 * 4 + (2 * WARPS + 2) * 4
                      + WARPS * 8;
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3((rb_group + R - 1) / R, packed.size(0) / rb_group);
  cfg.blockDim = dim3(WARPS * 32);
  cfg.dynamicSmemBytes = smem;
  cfg.stream = at::cuda::getCurrentCUDAStream();
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  const bool bf = x.scalar_type() == at::kBFloat16;
  const int4* pp = reinterpret_cast<const int4*>(packed.data_ptr<int>());
  const int* cp = codes.data_ptr<int>();
  const int rg = row_group, cg = col_group, r = R;
#define LAUNCH(QQ, DD) do {                                                                    \
    if (bf) {                                                                                  \
      auto kern = bcq_mma_gemv_kernel<__nv_bfloat16, QQ, DD>;                                  \
      C10_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,   \
                                          (int)smem));                                         \
      C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kern, (const __nv_bfloat16*)x.data_ptr(), pp,    \
          cp, (__nv_bfloat16*)y.data_ptr(), K, C, NG, rg, cg, r));                             \
    } else {                                                                                   \
      auto kern = bcq_mma_gemv_kernel<__half, QQ, DD>;                                         \
      C10_CUDA_CHECK(cudaFuncSetAttribute(kern, cudaFuncAttributeMaxDynamicSharedMemorySize,   \
                                          (int)smem));                                         \
      C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, kern, (const __half*)x.data_ptr(), pp, cp,       \
          (__half*)y.data_ptr(), K, C, NG, rg, cg, r));                                        \
    } } while (0)
#define LAUNCH_D(QQ) do { if (depth == 2) LAUNCH(QQ, 2); else if (depth == 4) LAUNCH(QQ, 4);   \
  else TORCH_CHECK(false, "depth must be 2 or 4"); } while (0)
  if (q == 2) LAUNCH_D(2); else if (q == 3) LAUNCH_D(3); else if (q == 4) LAUNCH_D(4);
  else TORCH_CHECK(false, "q must be 2, 3 or 4");
  C10_CUDA_KERNEL_LAUNCH_CHECK();
#undef LAUNCH_D
#undef LAUNCH
}
"""
)

CPP_SRC = (
    "void bcq_mma_gemv(torch::Tensor x, torch::Tensor packed, torch::Tensor codes, "
    "torch::Tensor y, int64_t q, int64_t col_group, int64_t row_group, int64_t depth, int64_t R);"
)
SMEM_LIMIT = 227 * 1024  # bytes of shared memory a block may opt into on sm_90
TARGET_BLOCKS = 264  # two per SM on an H100/H200: more 32-row blocks per block beyond that


def rows_per_block(n: int, row_group: int) -> int:
    """R, the 32-row blocks one block walks (its B built once): one while N/32 blocks are at most
    two per SM, else enough for about that many blocks, within one row group."""
    return max(1, min(row_group // ROWS, -(-(n // ROWS) // TARGET_BLOCKS)))


def shared_bytes(q: int, k: int, r: int) -> int:
    chunks = -(-k // CHUNK)
    return q * chunks * (96 + 16) * 4 + r * 96 * 4 + (2 * WARPS + 2) * 4 + WARPS * 8


def _layout(device):
    """For each (s, h, e) of a chunk (`k = 32 s + 16 h + 4 tig + e`), the word bit it lands at:
    `8 e + 2 s + h`; shape [s=4, h=2, e=4]."""
    s = torch.arange(4)[:, None, None]
    h = torch.arange(2)[None, :, None]
    e = torch.arange(4)[None, None, :]
    return (8 * e + 2 * s + h).to(device)


def repack_planes(planes: torch.Tensor) -> torch.Tensor:
    """int32 planes `[q, K/32, N]` (`shiftadd_format`) -> int32 `[N/32, C, q, 32, 4]` with
    `C = ceil(K/128)` (K zero-padded), the layout `bcq_mma_gemv` reads.

    Row `n = 32 nb + 16 t + 8 hh + g` and column `k = 128 c + 32 s + 16 h + 4 tig + e` go to bit
    `8 e + 2 s + h` of word `[nb, c, b, 4 g + tig, 2 t + hh]`: lane (g, tig) of an m16n8k32
    fragment finds the bits of its A registers of 4 k-steps in one word per row, each register
    one mask away (bit i of every byte)."""
    q, kw, n = planes.shape
    require(n % ROWS == 0, "repack_planes", f"N={n} must be a multiple of {ROWS} (rows per block)")
    chunks = -(-kw * 32 // CHUNK)
    shifts = torch.arange(32, dtype=torch.int32, device=planes.device)
    pos = _layout(planes.device)
    out = torch.empty(n // 32, chunks, q, 32, 4, dtype=torch.int32, device=planes.device)
    for b in range(q):  # one plane at a time bounds the temporaries
        bits = (planes[b].T.contiguous()[..., None] >> shifts) & 1  # [N, KW, 32]
        bits = torch.nn.functional.pad(bits.reshape(n, kw * 32), (0, chunks * CHUNK - kw * 32))
        # N -> (nb, t, hh, g); K -> (c, s, h, tig, e)
        bits = bits.reshape(n // 32, 2, 2, 8, chunks, 4, 2, 4, 4).to(torch.int64)
        words = (bits << pos[:, :, None, :]).sum((5, 6, 8))  # [nb, t, hh, g, c, tig]
        words = words.permute(0, 4, 3, 5, 1, 2).reshape(n // 32, chunks, 32, 4)
        out[:, :, b] = torch.where(words >= 2**31, words - 2**32, words).to(torch.int32)
    return out.contiguous()


def unpack_repacked(packed: torch.Tensor, k: int) -> torch.Tensor:
    """The inverse of `repack_planes` as +-1 floats `[q, N, k]` (for tests)."""
    nb, chunks, q, _, _ = packed.shape
    w = (packed.to(torch.int64) & 0xFFFFFFFF).reshape(nb, chunks, q, 8, 4, 2, 2)
    bits = (w[..., None, None, None] >> _layout(packed.device)) & 1
    # [nb, c, q, g, tig, t, hh, s, h, e] -> [q, nb, t, hh, g, c, s, h, tig, e]
    bits = bits.permute(2, 0, 5, 6, 3, 1, 7, 8, 4, 9)
    return 2.0 * bits.reshape(q, nb * 32, chunks * CHUNK)[:, :, :k].float() - 1.0


def check_bcq_mma_inputs(
    x, packed, codes, col_group: int, row_group: int, n: int, rows: int | None = None
) -> None:
    """What the kernel assumes, checked on the host (testable without a GPU): batch 1, x fp16 or
    bf16 with K a multiple of 32, `packed` the `repack_planes` layout of N = `n` rows and K
    columns, codes `[ceil(K/col_group), ceil(N/row_group), q]`, row_group a multiple of 32 (a
    block's rows in one row group), K x q within the exact int32 range, and B for the padded K
    fitting shared memory."""
    name = "bcq_mma_gemv"
    require(x.dim() == 2, name, f"x must be 2-D [1, K], got shape {tuple(x.shape)}")
    m, k = x.shape
    require(m == 1, name, f"batch M={m}: the kernel is batch 1 (use lut4_gemv_cuda for M > 1)")
    require(x.dtype in (torch.float16, torch.bfloat16), name, f"x dtype {x.dtype} (fp16 or bf16)")
    require(k % 32 == 0, name, f"x has K={k} columns, not whole 32-column words")
    require(
        packed.dim() == 5 and packed.dtype == torch.int32 and packed.is_contiguous(),
        name,
        f"packed must be contiguous int32 [N/32, C, q, 32, 4] (repack_planes), got "
        f"{packed.dtype} {tuple(packed.shape)}",
    )
    q = packed.shape[2]
    want = (n // ROWS, -(-k // CHUNK), q, 32, 4)
    require(n % ROWS == 0, name, f"N={n} must be a multiple of {ROWS} (rows per block)")
    require(tuple(packed.shape) == want, name, f"packed {tuple(packed.shape)} for N={n}, K={k}: "
            f"want {want}")  # fmt: skip
    require(q in (2, 3, 4), name, f"bits q={q} not supported (allowed: [2, 3, 4])")
    require(col_group > 0 and col_group % 8 == 0, name, f"col_group={col_group}: a multiple of 8")
    require(row_group > 0 and row_group % ROWS == 0, name,
            f"row_group={row_group} must be a multiple of {ROWS}")  # fmt: skip
    want = (-(-k // col_group), -(-n // row_group), q)
    require(
        codes.dtype == torch.int32 and codes.is_contiguous() and tuple(codes.shape) == want,
        name,
        f"codes must be contiguous int32 {want}, got {codes.dtype} {tuple(codes.shape)}",
    )
    require(k * q < 131072, name, f"K={k} x q={q} >= 131072: the int32 sums could overflow")
    r = rows_per_block(n, row_group) if rows is None else rows
    require(r > 0, name, f"rows={r} must be > 0")
    smem = shared_bytes(q, k, r)
    require(smem <= SMEM_LIMIT, name, f"K={k}, q={q}: B needs {smem} bytes of shared memory")
    require(x.device == packed.device == codes.device, name, "x, packed and codes on one device")


@functools.cache
def _module():
    return build_extension("celine_bcq_mma_gemv_v2", CPP_SRC, CUDA_SRC, "bcq_mma_gemv")


def bcq_mma_gemv(
    x: torch.Tensor,
    packed: torch.Tensor,
    codes: torch.Tensor,
    col_group: int,
    row_group: int,
    n: int,
    depth: int = 4,
    rows: int | None = None,
) -> torch.Tensor:
    """`y = x @ W.T` for `x [1, K]` (fp16 or bf16) with W's planes in the `repack_planes`
    layout (`[N/32, C, q, 32, 4]`, N = `n`) -> `[1, N]` in x's dtype. `rows`: 32-row blocks
    per thread block (default `rows_per_block`)."""
    r = rows_per_block(n, row_group) if rows is None else rows
    if not torch.compiler.is_compiling():  # checked on the eager calls before any trace
        check_bcq_mma_inputs(x, packed, codes, col_group, row_group, n, r)
        require(depth in (2, 4), "bcq_mma_gemv", f"depth={depth} must be 2 or 4")
        require(x.is_cuda, "bcq_mma_gemv", f"runs on CUDA tensors only, got {x.device}")
    return torch.ops.celine.bcq_mma_gemv(x, packed, codes, col_group, row_group, n, depth, r)


# A custom op, as lut4_gemv_cuda: one opaque node for torch.compile, one launch in a CUDA graph.
@torch.library.custom_op("celine::bcq_mma_gemv", mutates_args=())
def _bcq_mma_op(
    x: torch.Tensor, packed: torch.Tensor, codes: torch.Tensor, col_group: int, row_group: int,
    n: int, depth: int, rows: int,
) -> torch.Tensor:  # fmt: skip
    y = torch.empty(x.shape[0], n, dtype=x.dtype, device=x.device)
    xin = x.contiguous()
    if xin.data_ptr() % 16:  # B is built from 16-byte reads of x
        xin = xin.clone()
    _module().bcq_mma_gemv(
        xin, packed, codes, y, packed.shape[2], col_group, row_group, depth, rows
    )
    return y


@_bcq_mma_op.register_fake
def _(x, packed, codes, col_group, row_group, n, depth, rows):
    return x.new_empty(x.shape[0], n)

"""CUDA LUT-GEMV with 4-input tables in shared memory, for ShiftAddLLM weights (GPU only).

The same computation as `lut4_gemv.py` (the Triton kernel) over the same storage format
(`shiftadd_format.py`), written in CUDA because Triton gives no addressable shared memory:
tables are built once per block into shared memory and every lookup is one conflict-free shared
load (16 fp32 entries sit in 16 distinct banks; all lanes of a warp read the same table). Compiled
on first use with `torch.utils.cpp_extension.load_inline` (needs nvcc, so GPU machines only; the
CPU and CI use the Triton kernel under TRITON_INTERPRET or the PyTorch reference).

Work split: blockIdx.y owns `words` int32 words of K (32 columns each), blockIdx.x owns
`row_iters` tiles of 512 rows, blockIdx.z the input row; each thread owns 4 consecutive rows and
reads their words with one 16-byte load per (plane, word), the next tile's while it looks up the
current one (the first tile's issued before the tables are built). Many short blocks (with `words=1`, 256
splits of K = 8192) keep loads and lookups of different blocks overlapping on every SM; the
measured alternatives (one wave of long blocks with a register ring over words, clusters that
reduce split-K partials through distributed shared memory, an in-kernel last-block finish, L2 bulk
prefetch) were slower (experiments/shiftadd/README.md).

Split-K partials go out as one 16-byte fp32 atomic per thread into a zeroed workspace; a second
small kernel writes the fp16 output and leaves the workspace at zero for the next call. Both
kernels launch as programmatic dependents (PDL) that wait for their predecessor before reading
anything, so each one's launch overlaps the kernel before it (on the H200 at 8192x8192, 3 bits:
14.0 us with the finishing kernel launched after the GEMV's last block, 13.0 us so). The
workspace lives per (device, M, N), so calls of one shape must not run concurrently on two
streams.
"""

from __future__ import annotations

import functools

import torch

from celine.kernels.cuda_build import build_extension
from celine.kernels.gemv_checks import check_gemv_inputs, require
from celine.kernels.shiftadd_format import APOT_DECODE_CUDA

CUDA_SRC = (
    r"""
#include <torch/extension.h>
#include <cuda_fp16.h>
#include <cuda_bf16.h>
#include <ATen/cuda/CUDAContext.h>

#define ALPHA_SMEM 1024  // floats of scales per block (row groups x planes x 8-column blocks)
#define TILE 512         // rows per tile: 128 threads x 4 rows

__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ unsigned pack2(float a, float b, __half) {
  const __half2 h = __floats2half2_rn(a, b);
  return *reinterpret_cast<const unsigned*>(&h);
}
__device__ __forceinline__ unsigned pack2(float a, float b, __nv_bfloat16) {
  const __nv_bfloat162 h = __floats2bfloat162_rn(a, b);
  return *reinterpret_cast<const unsigned*>(&h);
}

"""
    + APOT_DECODE_CUDA
    + r"""
// The Q x WORDS plane words of 4 consecutive rows (`p` points at plane 0, word 0 of them; planes
// are `ps`, words `ws` int4 apart), or zeros when `ok` is false (past N) or past K (`wok`).
template <int Q, int WORDS>
__device__ __forceinline__ void load_tile(int4 (&dst)[Q][WORDS], const int4* __restrict__ p,
                                          size_t ps, size_t ws, bool ok, const bool (&wok)[WORDS],
                                          bool stream) {
  #pragma unroll
  for (int b = 0; b < Q; ++b) {
    #pragma unroll
    for (int j = 0; j < WORDS; ++j) {
      const int4* a = p + b * ps + j * ws;
      dst[b][j] = ok && wok[j] ? (stream ? __ldcs(a) : __ldg(a)) : make_int4(0, 0, 0, 0);
    }
  }
}

// Tables without scales, shared by every plane and every row of the block, so a block walks
// several row tiles (prefetching the next tile's words into registers while it looks up the
// current one) whatever the row groups; the scales of all row groups of the block's columns sit in
// shared memory and are applied once per (plane, 8-column block) as one FMA. Each thread owns 4
// consecutive rows (one 16-byte load per plane and word). Split-K partials go out as one 16-byte
// fp32 atomic per thread into a workspace that `finish_kernel` reads and leaves zeroed.
// Everything per tile that is not a lookup is an increment (plane pointer, output pointer, row
// group): the profile of the earlier version (issue #28) counted 45 instructions per (row, plane,
// word) against 28 in the lookups, the rest mostly address and row-group arithmetic per tile.
template <typename XT, int Q, int WORDS, int MINB>
__global__ void __launch_bounds__(128, MINB) lut4_gemv_kernel(
    const XT* __restrict__ x, const int* __restrict__ planes, const int* __restrict__ codes,
    float* __restrict__ partial, int N, int KW, int NG, int row_group, int col_group,
    int row_iters, int M) {
  __shared__ float T[WORDS * 128];  // [4-column group][key]
  __shared__ __align__(16) float alpha[ALPHA_SMEM];  // [row group][plane][8-column block]
  // Launched as a programmatic dependent: the block may be resident before the previous kernel
  // (e.g. the last call's finish_kernel) is done, but reads nothing until it is; then it lets
  // this call's finish_kernel launch, so that kernel's launch overlaps this one's work.
  asm volatile("griddepcontrol.wait;" ::: "memory");
  asm volatile("griddepcontrol.launch_dependents;");
  // The M input rows of one weight tile are adjacent blocks (blockIdx.x = tile * M + m), so for
  // M > 1 the tile is read from HBM once and from L2 by the other rows (no streaming hint then).
  const int m = blockIdx.x % M, w0 = blockIdx.y * WORDS, K = KW * 32;
  const int n0 = (blockIdx.x / M) * TILE * row_iters;
  const bool stream = M == 1;
  int row = n0 + 4 * threadIdx.x;
  const size_t ps = (size_t)KW * N / 4, ws = N / 4;  // int4 strides of a plane and a word
  const int4* p = reinterpret_cast<const int4*>(planes + (size_t)w0 * N + row);
  bool wok[WORDS];
  #pragma unroll
  for (int j = 0; j < WORDS; ++j) wok[j] = w0 + j < KW;
  int4 cur[Q][WORDS];
  load_tile<Q, WORDS>(cur, p, ps, ws, row < N, wok, stream);
  // Every global read of the prologue is issued before any is used (the first tile above, the
  // table inputs and the first scale code below), so a block waits one memory latency before its
  // first lookup rather than three in a row (v6 read x, built the tables, then read the codes).
  const int ng0 = n0 / row_group;
  const int ng_count = min(NG - ng0, (TILE * row_iters + row_group - 1) / row_group + 1);
  const int n_alpha = ng_count * Q * WORDS * 4;
  int code0 = 0;
  bool has_code0 = false;
  if (threadIdx.x < n_alpha) {
    const int e = threadIdx.x;
    const int blk = e % (WORDS * 4), b = (e / (WORDS * 4)) % Q, g = e / (WORDS * 4 * Q);
    const int col = w0 * 32 + blk * 8;
    has_code0 = col < K;
    if (has_code0) code0 = __ldg(codes + ((col / col_group) * NG + ng0 + g) * Q + b);
  }
  float xin[WORDS][4];  // blockDim.x == 128: thread t builds table entries t, t + 128, ...
  #pragma unroll
  for (int i = 0; i < WORDS; ++i) {
    const int col = (w0 * 8 + ((threadIdx.x + i * 128) >> 4)) * 4;
    const XT* xc = x + (size_t)m * K + col;
    #pragma unroll
    for (int t = 0; t < 4; ++t) xin[i][t] = col < K ? to_f(xc[t]) : 0.f;
  }
  #pragma unroll
  for (int i = 0; i < WORDS; ++i) {
    const int key = threadIdx.x & 15;  // (t + 128 i) & 15
    float s = 0.f;
    #pragma unroll
    for (int t = 0; t < 4; ++t) s += ((key >> t) & 1) ? xin[i][t] : -xin[i][t];
    T[threadIdx.x + i * 128] = s;
  }
  if (threadIdx.x < n_alpha) alpha[threadIdx.x] = has_code0 ? decode_apot(code0) : 0.f;
  for (int e = threadIdx.x + 128; e < n_alpha; e += 128) {
    const int blk = e % (WORDS * 4), b = (e / (WORDS * 4)) % Q, g = e / (WORDS * 4 * Q);
    const int col = w0 * 32 + blk * 8;
    alpha[e] = col < K ? decode_apot(codes[((col / col_group) * NG + ng0 + g) * Q + b]) : 0.f;
  }
  // this thread's row group (relative to ng0) and the first row of the next group, advanced by
  // comparison as the rows advance by one tile (row_group is a multiple of 4: the 4 rows of a
  // thread share a group)
  int gi = row / row_group;
  int gend = (gi + 1) * row_group;
  gi -= ng0;
  float* out = partial + (size_t)m * N + row;
  __syncthreads();
  for (int it = 0; it < row_iters; ++it, row += TILE, p += TILE / 4, out += TILE) {
    int4 nxt[Q][WORDS];
    load_tile<Q, WORDS>(nxt, p + TILE / 4, ps, ws, it + 1 < row_iters && row + TILE < N, wok,
                        stream);
    if (row < N) {
      while (row >= gend) { ++gi; gend += row_group; }
      const float* a = alpha + gi * Q * WORDS * 4;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      #pragma unroll
      for (int b = 0; b < Q; ++b) {
        #pragma unroll
        for (int j = 0; j < WORDS; ++j) {
          const float4 a4 = *reinterpret_cast<const float4*>(a + (b * WORDS + j) * 4);
          const float av[4] = {a4.x, a4.y, a4.z, a4.w};
          const int ws4[4] = {cur[b][j].x, cur[b][j].y, cur[b][j].z, cur[b][j].w};
          #pragma unroll
          for (int r = 0; r < 4; ++r) {
            const unsigned u = ws4[r];
            // byte offsets (x4) of the even and odd nibbles, one per byte of these two words
            const unsigned even = (u << 2) & 0x3C3C3C3Cu, odd = (u >> 2) & 0x3C3C3C3Cu;
            #pragma unroll
            for (int blk = 0; blk < 4; ++blk) {  // 8-column block: two nibbles, one scale
              const char* Tb = reinterpret_cast<const char*>(T + (j * 8 + 2 * blk) * 16);
              // one byte permute per nibble instead of a shift and a mask per nibble
              const unsigned lo_off = __byte_perm(even, 0, 0x4440 + blk);
              const unsigned hi_off = __byte_perm(odd, 0, 0x4440 + blk);
              const float lo = *reinterpret_cast<const float*>(Tb + lo_off);
              const float hi = *reinterpret_cast<const float*>(Tb + 64 + hi_off);
              acc[r] = fmaf(av[blk], lo + hi, acc[r]);
            }
          }
        }
      }
      atomicAdd(reinterpret_cast<float4*>(out), make_float4(acc[0], acc[1], acc[2], acc[3]));
    }
    #pragma unroll
    for (int b = 0; b < Q; ++b) {
      #pragma unroll
      for (int j = 0; j < WORDS; ++j) cur[b][j] = nxt[b][j];
    }
  }
}

// The split-K sums -> y in fp16, the workspace left at zero for the next call. Launched as a
// programmatic dependent of the GEMV kernel (so its blocks are resident and waiting when the GEMV
// ends); it lets the next kernel launch at once, which waits in turn (the next GEMV does).
template <typename T>
__global__ void finish_kernel(float* __restrict__ partial, T* __restrict__ y, int total) {
  asm volatile("griddepcontrol.launch_dependents;");
  asm volatile("griddepcontrol.wait;" ::: "memory");
  const int i = 4 * (blockIdx.x * blockDim.x + threadIdx.x);
  if (i >= total) return;
  float4* p = reinterpret_cast<float4*>(partial + i);
  const float4 s = *p;
  *p = make_float4(0.f, 0.f, 0.f, 0.f);
  uint2 out;
  out.x = pack2(s.x, s.y, T());
  out.y = pack2(s.z, s.w, T());
  *reinterpret_cast<uint2*>(y + i) = out;
}

void lut4_gemv_cuda(torch::Tensor x, torch::Tensor planes, torch::Tensor codes, torch::Tensor y,
                    torch::Tensor partial, int64_t col_group, int64_t row_group, int64_t min_blocks,
                    int64_t row_iters, int64_t words) {
  const int M = x.size(0), q = planes.size(0), KW = planes.size(1), N = planes.size(2);
  const int NG = codes.size(1);
  auto stream = at::cuda::getCurrentCUDAStream();
  // Both kernels launch with programmatic stream serialization (PDL): each may become resident
  // while its predecessor runs and waits for it (griddepcontrol.wait) before reading anything, so
  // results are those of plain stream order and only launch latency is hidden.
  cudaLaunchAttribute attr[1];
  attr[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr[0].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t cfg = {};
  cfg.gridDim = dim3(M * ((N + TILE * row_iters - 1) / (TILE * row_iters)), (KW + words - 1) / words, 1);
  cfg.blockDim = dim3(128);
  cfg.stream = stream;
  cfg.attrs = attr;
  cfg.numAttrs = 1;
  const bool bf = x.scalar_type() == at::kBFloat16;
  const void* xv = x.data_ptr();
  const int *pp = planes.data_ptr<int>(), *cp = codes.data_ptr<int>();
  float* wp = partial.data_ptr<float>();
  const int rg = row_group, cg = col_group, ri = row_iters;
#define LAUNCH(QQ, WW, MB) do { if (bf) C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg,                   \
      lut4_gemv_kernel<__nv_bfloat16, QQ, WW, MB>, (const __nv_bfloat16*)xv, pp, cp, wp, N, KW, NG, \
      rg, cg, ri, M));                                                                          \
  else C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, lut4_gemv_kernel<__half, QQ, WW, MB>,             \
      (const __half*)xv, pp, cp, wp, N, KW, NG, rg, cg, ri, M)); } while (0)
#define LAUNCH_W(QQ, MB) do { if (words == 1) LAUNCH(QQ, 1, MB); else if (words == 2) LAUNCH(QQ, 2, MB); \
  else TORCH_CHECK(false, "words must be 1 or 2"); } while (0)
#define LAUNCH_M(QQ) do { if (min_blocks >= 8) LAUNCH_W(QQ, 8); else if (min_blocks >= 6) LAUNCH_W(QQ, 6); \
  else LAUNCH_W(QQ, 4); } while (0)
  if (q == 2) LAUNCH_M(2); else if (q == 3) LAUNCH_M(3); else if (q == 4) LAUNCH_M(4);
  else TORCH_CHECK(false, "q must be 2, 3 or 4");
  C10_CUDA_KERNEL_LAUNCH_CHECK();
#undef LAUNCH_M
#undef LAUNCH_W
#undef LAUNCH
  cfg.gridDim = dim3((M * N / 4 + 255) / 256);
  cfg.blockDim = dim3(256);
  if (bf)
    C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, finish_kernel<__nv_bfloat16>, partial.data_ptr<float>(),
                                      reinterpret_cast<__nv_bfloat16*>(y.data_ptr()), M * N));
  else
    C10_CUDA_CHECK(cudaLaunchKernelEx(&cfg, finish_kernel<__half>, partial.data_ptr<float>(),
                                      reinterpret_cast<__half*>(y.data_ptr()), M * N));
}
"""
)

CPP_SRC = (
    "void lut4_gemv_cuda(torch::Tensor x, torch::Tensor planes, torch::Tensor codes, "
    "torch::Tensor y, torch::Tensor partial, int64_t col_group, int64_t row_group, "
    "int64_t min_blocks, int64_t row_iters, int64_t words);"
)
TILE = 512  # rows per block tile (128 threads x 4 rows)
ALPHA_SMEM = 1024  # floats of scales a block stages in shared memory


@functools.cache
def _module():
    return build_extension("celine_lut4_gemv_v7", CPP_SRC, CUDA_SRC, "lut4_gemv_cuda")


_WORKSPACES: dict[tuple, torch.Tensor] = {}


def _workspace(device: torch.device, m: int, n: int) -> torch.Tensor:
    """The zeroed fp32 split-K accumulator for (device, M, N); every call leaves it zeroed again
    (`finish_kernel`), so it is allocated once."""
    key = (device, m, n)
    if key not in _WORKSPACES:
        _WORKSPACES[key] = torch.zeros(m, n, dtype=torch.float32, device=device)
    return _WORKSPACES[key]


def scales_fit(row_iters: int, words: int, row_group: int, n_groups: int, q: int) -> bool:
    """Whether a block's scales (every row group its `row_iters` tiles touch, q planes, `words`
    x 4 eight-column blocks) fit the kernel's shared buffer."""
    groups_per_block = -(-TILE * row_iters // row_group) + 1
    return min(groups_per_block, n_groups) * q * words * 4 <= ALPHA_SMEM


def check_lut4_cuda_inputs(
    x, planes, codes, col_group: int, row_group: int, min_blocks: int, row_iters: int, words: int
) -> tuple[int, int]:
    """Everything the CUDA kernel assumes, checked on the host (testable without a GPU);
    returns (M, N). Besides the format's checks: q in {2, 3, 4} (the compiled templates),
    N and row_group multiples of 4 (16-byte loads of 4 rows), `words` 1 or 2, `row_iters` > 0,
    and the block's scales fitting its shared buffer."""
    name = "lut4_gemv_cuda"
    m, n, _, q = check_gemv_inputs(name, x, planes, codes, col_group, row_group, bits=(2, 3, 4))
    require(n % 4 == 0, name, f"N={n} must be a multiple of 4 (each thread loads 4 rows)")
    require(row_group % 4 == 0, name, f"row_group={row_group} must be a multiple of 4")
    require(words in (1, 2), name, f"words={words} must be 1 or 2 (compiled variants)")
    require(row_iters > 0, name, f"row_iters={row_iters} must be > 0")
    require(min_blocks > 0, name, f"min_blocks={min_blocks} must be > 0")
    require(
        x.dtype in (torch.float16, torch.float32, torch.bfloat16),
        name,
        f"x dtype {x.dtype} (fp16, bf16 or fp32; used as fp16)",
    )
    require(
        scales_fit(row_iters, words, row_group, codes.shape[1], q),
        name,
        f"row_group={row_group} with row_iters={row_iters}: the block's scales do not fit "
        f"its {ALPHA_SMEM}-float shared buffer; use fewer row_iters (or lut_gemv)",
    )
    return m, n


MAX_BLOCKS_AT_TWO_TILES = 3072


def default_tile(n: int, k: int, m: int = 1) -> tuple[int, int, int]:
    """(min_blocks, row_iters, words) for an N x K layer and M input rows: two 512-row tiles per
    block while the grid (M x row blocks x 32-column words) has at most 3072 blocks, else four.
    The H200 tables behind it (3 bits, best of 6 tiles, batch 1): (8, 2, 1) is best on every
    Llama-7B layer shape (4096x4096 5.72 vs 6.91 us with four tiles) and on 8192x8192, (8, 4, 1)
    on 32768x4096 and 28672x8192, where two tiles make 4096 and 7168 blocks;
    `tests/kernels/test_lut4_tile_rule.py` checks the rule against the committed tables. The
    grid has a block per input row, so M counts: with it left out, the 7B-shaped model ran
    batches 2-16 2-7% slower end to end than with four tiles everywhere (room README)."""
    blocks_at_two = m * -(-n // (2 * TILE)) * -(-k // 32)
    return 8, 2 if blocks_at_two <= MAX_BLOCKS_AT_TWO_TILES else 4, 1


def tile_for(m: int, planes: torch.Tensor, codes: torch.Tensor, row_group: int):
    """`default_tile` for this call, with fewer row tiles a block where the block's scales would
    not fit its shared buffer (fine row groups), so that the rule never turns a call the kernel
    can run into a refusal."""
    if planes.dim() != 3 or codes.dim() != 3 or row_group <= 0:
        return 8, 1, 1  # malformed: the checks that follow name the problem
    q, kw, n = planes.shape
    min_blocks, row_iters, words = default_tile(n, kw * 32, m)
    while row_iters > 1 and not scales_fit(row_iters, words, row_group, codes.shape[1], q):
        row_iters //= 2
    return min_blocks, row_iters, words


def lut4_gemv_cuda(
    x: torch.Tensor,
    planes: torch.Tensor,
    codes: torch.Tensor,
    col_group: int,
    row_group: int,
    min_blocks: int | None = None,  # blocks per SM the registers allow (4: 128 regs, 6: 80, 8: 64)
    row_iters: int | None = None,  # 512-row tiles a block walks
    words: int | None = None,  # int32 words (32 columns each) of K per block: 1 or 2
) -> torch.Tensor:
    """`y = x @ W.T` for `x [M, K]` (fp16 or bf16 read as is, fp32 used as fp16) on a CUDA
    device -> `[M, N]` in x's dtype.

    Any row grouping whose scales for one block (`row_iters` tiles of 512 rows) fit in shared
    memory; knobs left at None come from `default_tile` (benchmarked in
    bench/shiftadd/lut4_bench.py and lut4_variants.py). Calls that share a shape share a
    workspace, so run them on one stream."""
    if None in (min_blocks, row_iters, words):
        tile = tile_for(x.shape[0] if x.dim() == 2 else 1, planes, codes, row_group)
        min_blocks = tile[0] if min_blocks is None else min_blocks
        row_iters = tile[1] if row_iters is None else row_iters
        words = tile[2] if words is None else words
    if not torch.compiler.is_compiling():  # checked on the eager calls before any trace
        check_lut4_cuda_inputs(x, planes, codes, col_group, row_group, min_blocks, row_iters, words)
        require(x.is_cuda, "lut4_gemv_cuda", f"runs on CUDA tensors only, got {x.device}")
    return torch.ops.celine.lut4_gemv_cuda(
        x, planes, codes, col_group, row_group, min_blocks, row_iters, words
    )


# A custom op, so that torch.compile treats the launch as one opaque node (its fake kernel gives
# the output's shape) and CUDA-graph capture records the two launches: the op allocates only its
# output, and the split-K workspace is created by the first (eager) call and left zeroed by every
# call, so replays need no host work.
@torch.library.custom_op("celine::lut4_gemv_cuda", mutates_args=())
def _lut4_gemv_op(
    x: torch.Tensor, planes: torch.Tensor, codes: torch.Tensor, col_group: int, row_group: int,
    min_blocks: int, row_iters: int, words: int,
) -> torch.Tensor:  # fmt: skip
    m, n = x.shape[0], planes.shape[2]
    # fp16 and bf16 inputs are read as they are (no conversion launch); fp32 goes through fp16
    xin = x.contiguous() if x.dtype in (torch.float16, torch.bfloat16) else x.half().contiguous()
    y = torch.empty(m, n, dtype=xin.dtype, device=x.device)
    _module().lut4_gemv_cuda(
        xin, planes.contiguous(), codes.contiguous(), y, _workspace(x.device, m, n),
        col_group, row_group, min_blocks, row_iters, words,
    )  # fmt: skip
    return y if y.dtype == x.dtype else y.to(x.dtype)


@_lut4_gemv_op.register_fake
def _(x, planes, codes, col_group, row_group, min_blocks, row_iters, words):
    return x.new_empty(x.shape[0], planes.shape[2])

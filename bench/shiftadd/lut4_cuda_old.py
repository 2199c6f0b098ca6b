"""Earlier CUDA sources of the LUT-4 GEMV, kept so that `lut4_variants.py` can time them beside the
shipped one in one process: v5 (before issue #28's rework) and v6 (per-tile increments, 16-byte
scale loads; the prologue still read x, then the scale codes, one after the other)."""

CUDA_SRC_V5 = r"""
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

__device__ __forceinline__ float decode_apot(int code) {
  float v = 0.f;
  #pragma unroll
  for (int t = 0; t < 3; ++t) {
    int byte = (code >> (8 * t)) & 255;
    int mag = byte & 127;
    if (mag) {
      float p = __int_as_float((mag - 64 + 127) << 23);
      v += (byte >> 7) ? -p : p;
    }
  }
  return v;
}

// The Q x WORDS plane words of 4 consecutive rows, or zeros past the edges.
template <int Q, int WORDS>
__device__ __forceinline__ void load_tile(int4 (&dst)[Q][WORDS], const int* __restrict__ planes,
                                          int KW, int N, int w0, int row, bool ok, bool stream) {
  #pragma unroll
  for (int b = 0; b < Q; ++b) {
    #pragma unroll
    for (int j = 0; j < WORDS; ++j)
      dst[b][j] = ok && row < N && w0 + j < KW
          ? (stream ? __ldcs(reinterpret_cast<const int4*>(planes + ((size_t)b * KW + w0 + j) * N + row))
                    : __ldg(reinterpret_cast<const int4*>(planes + ((size_t)b * KW + w0 + j) * N + row)))
          : make_int4(0, 0, 0, 0);
  }
}

// Tables without scales, shared by every plane and every row of the block, so a block walks
// several row tiles (prefetching the next tile's words into registers while it looks up the
// current one) whatever the row groups; the scales of all row groups of the block's columns sit in
// shared memory and are applied once per (plane, 8-column block) as one FMA. Each thread owns 4
// consecutive rows (one 16-byte load per plane and word). Split-K partials go out as one 16-byte
// fp32 atomic per thread into a workspace that `finish_kernel` reads and leaves zeroed.
template <typename XT, int Q, int WORDS, int MINB>
__global__ void __launch_bounds__(128, MINB) lut4_gemv_kernel(
    const XT* __restrict__ x, const int* __restrict__ planes, const int* __restrict__ codes,
    float* __restrict__ partial, int N, int KW, int NG, int row_group, int col_group,
    int row_iters, int M) {
  __shared__ float T[WORDS * 128];  // [4-column group][key]
  __shared__ float alpha[ALPHA_SMEM];  // [row group][plane][8-column block]
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
  int4 cur[Q][WORDS];
  load_tile<Q, WORDS>(cur, planes, KW, N, w0, row, true, stream);
  for (int e = threadIdx.x; e < WORDS * 128; e += blockDim.x) {
    const int key = e & 15, col = (w0 * 8 + (e >> 4)) * 4;
    float s = 0.f;
    if (col < K) {
      const XT* xc = x + (size_t)m * K + col;
      #pragma unroll
      for (int t = 0; t < 4; ++t) s += ((key >> t) & 1) ? to_f(xc[t]) : -to_f(xc[t]);
    }
    T[e] = s;
  }
  const int ng0 = n0 / row_group;
  const int ng_count = min(NG - ng0, (TILE * row_iters + row_group - 1) / row_group + 1);
  for (int e = threadIdx.x; e < ng_count * Q * WORDS * 4; e += blockDim.x) {
    const int blk = e % (WORDS * 4), b = (e / (WORDS * 4)) % Q, g = e / (WORDS * 4 * Q);
    const int col = w0 * 32 + blk * 8;
    alpha[e] = col < K ? decode_apot(codes[((col / col_group) * NG + ng0 + g) * Q + b]) : 0.f;
  }
  __syncthreads();
  for (int it = 0; it < row_iters; ++it, row += TILE) {
    int4 nxt[Q][WORDS];
    load_tile<Q, WORDS>(nxt, planes, KW, N, w0, row + TILE, it + 1 < row_iters, stream);
    if (row < N) {
      const float* a = alpha + (row / row_group - ng0) * Q * WORDS * 4;
      float acc[4] = {0.f, 0.f, 0.f, 0.f};
      #pragma unroll
      for (int b = 0; b < Q; ++b) {
        #pragma unroll
        for (int j = 0; j < WORDS; ++j) {
          const int ws[4] = {cur[b][j].x, cur[b][j].y, cur[b][j].z, cur[b][j].w};
          #pragma unroll
          for (int r = 0; r < 4; ++r) {
            const unsigned u = ws[r];
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
              acc[r] = fmaf(a[(b * WORDS + j) * 4 + blk], lo + hi, acc[r]);
            }
          }
        }
      }
      atomicAdd(reinterpret_cast<float4*>(partial + (size_t)m * N + row),
                make_float4(acc[0], acc[1], acc[2], acc[3]));
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

CUDA_SRC_V6 = r"""
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

__device__ __forceinline__ float decode_apot(int code) {
  float v = 0.f;
  #pragma unroll
  for (int t = 0; t < 3; ++t) {
    int byte = (code >> (8 * t)) & 255;
    int mag = byte & 127;
    if (mag) {
      float p = __int_as_float((mag - 64 + 127) << 23);
      v += (byte >> 7) ? -p : p;
    }
  }
  return v;
}

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
  for (int e = threadIdx.x; e < WORDS * 128; e += blockDim.x) {
    const int key = e & 15, col = (w0 * 8 + (e >> 4)) * 4;
    float s = 0.f;
    if (col < K) {
      const XT* xc = x + (size_t)m * K + col;
      #pragma unroll
      for (int t = 0; t < 4; ++t) s += ((key >> t) & 1) ? to_f(xc[t]) : -to_f(xc[t]);
    }
    T[e] = s;
  }
  const int ng0 = n0 / row_group;
  const int ng_count = min(NG - ng0, (TILE * row_iters + row_group - 1) / row_group + 1);
  for (int e = threadIdx.x; e < ng_count * Q * WORDS * 4; e += blockDim.x) {
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

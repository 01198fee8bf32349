// DeBERTa-v2/v3 attention probabilities on CPU without the [B, H, L, L] relative-position bias
// (hpc_classify/engine/tiled_attention.py builds this file once per machine type and calls it).
//
// In place, per (batch x head) and per tile of 16 query rows, in fp32 whatever the storage dtype:
//   scores[i, j] += c2p[i, j - i % R + R - 1] + p2c[j, i - j % R + R - 1]   (a skew, read per tile)
//   scores[i, j]  = lowest float where blocked[b, i, j]
//   scores[i, :]  = softmax(scores[i, :])
// c2p / p2c are the content->position and position->content products (already divided by the attention
// scale) over the L + R - 1 relative offsets that each window of R query rows (c2p) or keys (p2c) meets
// (tiled_attention.window_products; R = L: one window over all 2L-1 offsets). The p2c term is a column
// skew: 16 consecutive query rows are one contiguous load from p2c's row j, transposed through a 16 x 16
// block into the row-major tile; 16 consecutive keys lie in one window, so each is one stride further.
// fused_attention_probabilities_ (bf16, AVX-512 BF16 only; the CPU is asked at run time) computes c2p and
// p2c itself per 16 x 16 block instead of reading them, and q.k too (see block_scores): it writes the
// probabilities into a buffer of its own, no scores matmul before it.
#include <torch/extension.h>
#include <ATen/Parallel.h>
#include <ATen/cpu/vec/functional.h>
#include <ATen/cpu/vec/vec.h>

#include <algorithm>
#include <cstdint>
#include <utility>
#include <limits>
#include <vector>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace {

using Vec = at::vec::Vectorized<float>;
using BVec = at::vec::Vectorized<at::BFloat16>;
constexpr int64_t kRows = 16;
constexpr int64_t kLead = 16;  // zero columns before offset 0 in the fused kernel's packed pk and pq_rev

// dst[j] = a[j] + b[j] in fp32.
void add_rows(float* dst, const float* a, const float* b, int64_t n) {
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) (Vec::loadu(a + j) + Vec::loadu(b + j)).store(dst + j);
  for (; j < n; ++j) dst[j] = a[j] + b[j];
}

void add_rows(float* dst, const at::BFloat16* a, const at::BFloat16* b, int64_t n) {
  int64_t j = 0;
  for (; j + BVec::size() <= n; j += BVec::size()) {
    auto [a0, a1] = at::vec::convert_to_float<at::BFloat16>(BVec::loadu(a + j));
    auto [b0, b1] = at::vec::convert_to_float<at::BFloat16>(BVec::loadu(b + j));
    (a0 + b0).store(dst + j);
    (a1 + b1).store(dst + j + Vec::size());
  }
  for (; j < n; ++j) dst[j] = float(a[j]) + float(b[j]);
}

// dst[j] = src[j] * scale, stored in dst's dtype.
void store_scaled(float* dst, const float* src, float scale, int64_t n) {
  const Vec factor(scale);
  int64_t j = 0;
  for (; j + Vec::size() <= n; j += Vec::size()) (Vec::loadu(src + j) * factor).store(dst + j);
  for (; j < n; ++j) dst[j] = src[j] * scale;
}

void store_scaled(at::BFloat16* dst, const float* src, float scale, int64_t n) {
  const Vec factor(scale);
  int64_t j = 0;
  for (; j + BVec::size() <= n; j += BVec::size()) {
    at::vec::convert_from_float<at::BFloat16>(
        Vec::loadu(src + j) * factor, Vec::loadu(src + j + Vec::size()) * factor)
        .store(dst + j);
  }
  for (; j < n; ++j) dst[j] = at::BFloat16(src[j] * scale);
}

// tile[r, jj] += src[jj * ld + r] for a whole 16 x 16 bf16 block, transposed in registers where at::vec has
// a transpose for this instruction set; false: the caller adds it element by element.
bool add_transposed_block(float* tile, int64_t ld_tile, const float*, int64_t, int64_t, int64_t) {
  return false;
}

bool add_transposed_block(float* tile, int64_t ld_tile, const at::BFloat16* src, int64_t ld, int64_t rows,
                          int64_t cols) {
#if defined(CPU_CAPABILITY_AVX512)
  static_assert(Vec::size() == kRows, "one row of a 16 x 16 block is one vector");
  if (rows != kRows || cols != kRows) return false;
  alignas(64) at::BFloat16 block[kRows * kRows];
  at::vec::transpose_mxn<at::BFloat16, kRows, kRows>(src, ld, block, kRows);
  for (int64_t r = 0; r < kRows; ++r) {
    float* t = tile + r * ld_tile;
    const Vec terms = std::get<0>(at::vec::convert_to_float<at::BFloat16>(
        at::vec::Vectorized<at::BFloat16>::loadu(block + r * kRows, kRows)));
    (Vec::loadu(t) + terms).store(t);
  }
  return true;
#else
  return false;
#endif
}

// out[j] = softmax(row)[j], in out's dtype; `row` is overwritten with the unnormalised exponentials.
template <typename T>
void softmax_row(float* row, T* out, int64_t n) {
  const float top = at::vec::reduce_all<float>([](Vec& a, Vec& b) { return at::vec::maximum(a, b); }, row, n);
  const Vec shift(top);
  at::vec::map([shift](Vec x) { return (x - shift).exp_u20(); }, row, row, n);
  const float total = at::vec::reduce_all<float>([](Vec& a, Vec& b) { return a + b; }, row, n);
  store_scaled(out, row, 1.0f / total, n);
}

// Rows first.. of one (document, head): the mask applied to the fp32 tile, then the softmax stored into `s`.
template <typename T>
void masked_softmax_rows(float* tile, T* s, const bool* blocked, int64_t document, int64_t first, int64_t rows,
                         int64_t length) {
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = first + r;
    float* t = tile + r * length;
    if (blocked != nullptr) {
      const bool* masked = blocked + (document * length + i) * length;
      for (int64_t j = 0; j < length; ++j)
        if (masked[j]) t[j] = std::numeric_limits<float>::lowest();
    }
    softmax_row(t, s + i * length, length);
  }
}

template <typename T>
void attention_probabilities(at::Tensor& scores, const at::Tensor& c2p, const at::Tensor& p2c,
                             const bool* blocked) {
  const int64_t groups = scores.size(0), length = scores.size(1);
  const int64_t heads = c2p.size(0), windows = c2p.size(1), batch = c2p.size(2), window = c2p.size(3);
  const int64_t offsets = c2p.size(4);  // L + R - 1
  // Row i of document x head `group` in the [H, T, B, R, L + R - 1] products.
  const auto row = [=](const T* products, int64_t group, int64_t i) {
    const int64_t b = group / heads, h = group % heads, t = i / window, r = i % window;
    return products + (((h * windows + t) * batch + b) * window + r) * offsets;
  };
  T* all_scores = scores.data_ptr<T>();
  const T* all_c2p = c2p.data_ptr<T>();
  const T* all_p2c = p2c.data_ptr<T>();
  const int64_t tiles = (length + kRows - 1) / kRows;
  at::parallel_for(0, groups * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> tile(kRows * length);
    float block[kRows][kRows];
    for (int64_t work = begin; work < end; ++work) {
      const int64_t group = work / tiles, first = (work % tiles) * kRows;
      const int64_t rows = std::min(kRows, length - first);
      T* s = all_scores + group * length * length;
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = first + r;
        add_rows(tile.data() + r * length, s + i * length, row(all_c2p, group, i) + (window - 1 - i % window),
                 length);
      }
      for (int64_t j0 = 0; j0 < length; j0 += kRows) {
        const int64_t cols = std::min(kRows, length - j0);
        // Key j's terms for rows first..: p[j, first - j % R + R - 1 ...]; keys j0..j0+15 share a window,
        // so each next key is one row on and one column back: a stride of offsets - 1.
        const T* corner = row(all_p2c, group, j0) + (first - j0 % window + window - 1);
        if (add_transposed_block(tile.data() + j0, length, corner, offsets - 1, rows, cols)) continue;
        for (int64_t jj = 0; jj < cols; ++jj) {
          const T* column = corner + jj * (offsets - 1);
          for (int64_t r = 0; r < rows; ++r) block[r][jj] = float(column[r]);
        }
        for (int64_t r = 0; r < rows; ++r) {
          float* t = tile.data() + r * length + j0;
          for (int64_t jj = 0; jj < cols; ++jj) t[jj] += block[r][jj];
        }
      }
      masked_softmax_rows(tile.data(), s, blocked, group / heads, first, rows, length);
    }
  });
}


// Only with the compiler it was built and tested with here (GCC 12: the avx512bf16 target, vdpbf16ps and
// __builtin_cpu_supports("avx512bf16")); elsewhere fused_supported() is false and the windows run.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#define FUSED_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16")))

// The fused variant (bf16, AVX-512 BF16): the c2p and p2c terms computed per 16 x 16 block of the tile with
// vdpbf16ps, never written. Lane jj of row r (query i = first + r, key j = j0 + jj):
//   c2p = q_i . pk[j - i + L - 1]: pk packed [d/2, N, 2] (pairs of the head dimension, offsets inner), so the
//         16 keys are 16 consecutive offsets: one load, times q_i's pair broadcast;
//   p2c = k_j . pq[i - j + L - 1]: pq packed with its offsets reversed (column m = 2L - 2 - offset), so the
//         16 keys are again 16 consecutive columns; the keys packed [d/2, L + 16, 2] give the other operand.
// Packing is done in tiled_attention.py: pk and pq_rev with kLead zero columns first (the window of a row 0 may
// start up to 16 columns before offset 0) and 2 x 16 after (the lanes past the last key).
// Row r's 16 offsets start r columns before row 0's: one window [base - 16, base + 16) loaded per pair p, and
// row r's vector taken from it with valignd (its shift must be a constant: hence the index sequence), rather
// than 16 unaligned loads that mostly straddle cache lines.
template <int r>
FUSED_TARGET inline __m512i shifted(__m512i lo, __m512i hi) {
  if constexpr (r == 0) {
    return hi;
  } else {
    return _mm512_alignr_epi32(hi, lo, 16 - r);
  }
}

// acc[r] += q_i . k_j for the 16 keys: q_i's pair broadcast against the 16 keys' pairs (one load for 16 rows).
template <int... r>
FUSED_TARGET inline void content_step(__m512* acc, const uint32_t* q, int64_t q_stride, int64_t p, __m512i kv,
                                      std::integer_sequence<int, r...>) {
  ((acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_set1_epi32(int(q[r * q_stride + p])), (__m512bh)kv)), ...);
}

template <int... r>
FUSED_TARGET inline void rows_step(__m512* acc, const uint32_t* q, int64_t q_stride, int64_t p, __m512i kv,
                                   const uint32_t* pk_p, const uint32_t* pq_p, std::integer_sequence<int, r...>) {
  const __m512i pk_lo = _mm512_loadu_si512(pk_p - 16), pk_hi = _mm512_loadu_si512(pk_p);
  const __m512i pq_lo = _mm512_loadu_si512(pq_p - 16), pq_hi = _mm512_loadu_si512(pq_p);
  ((acc[r] = _mm512_dpbf16_ps(
        _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_set1_epi32(int(q[r * q_stride + p])),
                         (__m512bh)shifted<r>(pk_lo, pk_hi)),
        (__m512bh)kv, (__m512bh)shifted<r>(pq_lo, pq_hi))),
   ...);
}

// The scores of the R (16, or 1 for a last partial tile: row by row) rows of the tile from `rows_first`, keys
// j0..j0+15, written into the tile: q.k / scale (a first pass over the head dimension, then scaled), plus c2p
// and p2c (a second pass, whose operands are already divided by the scale). Two passes rather than one: a
// separate q.k accumulator per row would need 32 vector registers with nothing left for the operands.
template <int R>
FUSED_TARGET void block_scores(float* tile, int64_t ld_tile, int64_t rows_first, int64_t j0, int64_t cols,
                               const uint32_t* q, int64_t q_stride, int64_t d2, float inv_scale,
                               const uint32_t* pk, const uint32_t* pq_rev, const uint32_t* keys, int64_t n,
                               int64_t lk, int64_t length) {
  const __mmask16 lanes = cols >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << cols) - 1);
  __m512 acc[R];
  for (int r = 0; r < R; ++r) acc[r] = _mm512_setzero_ps();
  for (int64_t p = 0; p < d2; ++p)
    content_step(acc, q, q_stride, p, _mm512_loadu_si512(keys + p * lk + j0), std::make_integer_sequence<int, R>{});
  const __m512 factor = _mm512_set1_ps(inv_scale);
  for (int r = 0; r < R; ++r) acc[r] = _mm512_mul_ps(acc[r], factor);
  const int64_t column = kLead + j0 + length - 1 - rows_first;  // row 0's first offset (both terms)
  for (int64_t p = 0; p < d2; ++p)
    rows_step(acc, q, q_stride, p, _mm512_loadu_si512(keys + p * lk + j0), pk + p * n + column,
              pq_rev + p * n + column, std::make_integer_sequence<int, R>{});
  for (int r = 0; r < R; ++r) _mm512_mask_storeu_ps(tile + r * ld_tile + j0, lanes, acc[r]);
}

bool fused_supported() { return __builtin_cpu_supports("avx512bf16"); }
#else
template <int R>
void block_scores(float*, int64_t, int64_t, int64_t, int64_t, const uint32_t*, int64_t, int64_t, float,
                  const uint32_t*, const uint32_t*, const uint32_t*, int64_t, int64_t, int64_t) {}
bool fused_supported() { return false; }
#endif

// probabilities [B*H, L, L] (written); query [B, H, L, d] with any strides but a contiguous last dimension
// (the projection's own layout: no copy).
void fused_probabilities(at::Tensor& probabilities, const at::Tensor& query, const at::Tensor& keys,
                         const at::Tensor& pk, const at::Tensor& pq_rev, const bool* blocked, float inv_scale) {
  const int64_t groups = probabilities.size(0), length = probabilities.size(1), heads = query.size(1);
  const int64_t d2 = query.size(3) / 2, n = pk.size(2), lk = keys.size(3);
  // Strides in pairs of bf16 (uint32): all even, checked by the caller.
  const int64_t q_batch = query.stride(0) / 2, q_head = query.stride(1) / 2, q_row = query.stride(2) / 2;
  using BF = at::BFloat16;
  BF* all_probabilities = probabilities.data_ptr<BF>();
  const auto* all_q = reinterpret_cast<const uint32_t*>(query.data_ptr<BF>());
  const auto* all_k = reinterpret_cast<const uint32_t*>(keys.data_ptr<BF>());
  const auto* all_pk = reinterpret_cast<const uint32_t*>(pk.data_ptr<BF>());
  const auto* all_pq = reinterpret_cast<const uint32_t*>(pq_rev.data_ptr<BF>());
  const int64_t tiles = (length + kRows - 1) / kRows;
  at::parallel_for(0, groups * tiles, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> tile(kRows * length);
    for (int64_t work = begin; work < end; ++work) {
      const int64_t group = work / tiles, first = (work % tiles) * kRows, b = group / heads, h = group % heads;
      const int64_t rows = std::min(kRows, length - first);
      const uint32_t* q = all_q + b * q_batch + h * q_head + first * q_row;
      const uint32_t* k = all_k + group * d2 * lk;
      const uint32_t* pk = all_pk + h * d2 * n;
      const uint32_t* pq = all_pq + h * d2 * n;
      for (int64_t j0 = 0; j0 < length; j0 += kRows) {
        const int64_t cols = std::min(kRows, length - j0);
        if (rows == kRows) {
          block_scores<kRows>(tile.data(), length, first, j0, cols, q, q_row, d2, inv_scale, pk, pq, k, n, lk,
                              length);
          continue;
        }
        for (int64_t r = 0; r < rows; ++r)
          block_scores<1>(tile.data() + r * length, length, first + r, j0, cols, q + r * q_row, q_row, d2,
                          inv_scale, pk, pq, k, n, lk, length);
      }
      masked_softmax_rows(tile.data(), all_probabilities + group * length * length, blocked, b, first, rows,
                          length);
    }
  });
}

// The [B, L, L] bool mask's data, or nullptr without one.
const bool* mask_data(const c10::optional<at::Tensor>& blocked, int64_t documents, int64_t length) {
  if (!blocked.has_value()) return nullptr;
  const at::Tensor& m = *blocked;
  TORCH_CHECK(m.scalar_type() == at::kBool && m.is_contiguous() && m.dim() == 3 && m.size(0) == documents &&
                  m.size(1) == length && m.size(2) == length,
              "blocked must be a contiguous bool [B, L, L]");
  return m.data_ptr<bool>();
}

}  // namespace

// scores: [B*H, L, L] (q.k / scale), c2p / p2c: [H, ceil(L / R), B, R, L + R - 1] for windows of R rows,
// blocked: [B, L, L] bool or None.
void tiled_attention_probabilities_(at::Tensor scores, const at::Tensor& c2p, const at::Tensor& p2c,
                                    const c10::optional<at::Tensor>& blocked) {
  TORCH_CHECK(scores.dim() == 3 && scores.size(1) == scores.size(2), "scores must be [B*H, L, L]");
  const int64_t length = scores.size(1);
  for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&scores, &c2p, &p2c}) {
    TORCH_CHECK(t->device().is_cpu() && t->is_contiguous(), "CPU contiguous tensors expected");
    TORCH_CHECK(t->scalar_type() == scores.scalar_type(), "scores, c2p and p2c must share a dtype");
  }
  TORCH_CHECK(c2p.sizes() == p2c.sizes() && c2p.dim() == 5, "c2p and p2c must be [H, T, B, R, L + R - 1]");
  const int64_t heads = c2p.size(0), window = c2p.size(3);
  TORCH_CHECK(window == length || (window > 0 && window % kRows == 0),
              "a window is all L rows or a multiple of 16 rows");
  TORCH_CHECK(c2p.size(1) == (length + window - 1) / window && c2p.size(2) * heads == scores.size(0) &&
                  c2p.size(4) == length + window - 1,
              "c2p and p2c must be [H, ceil(L / R), B, R, L + R - 1] for [B*H, L, L] scores");
  const bool* mask = mask_data(blocked, scores.size(0) / heads, length);
  if (scores.scalar_type() == at::kBFloat16) {
    attention_probabilities<at::BFloat16>(scores, c2p, p2c, mask);
  } else {
    TORCH_CHECK(scores.scalar_type() == at::kFloat, "float32 or bfloat16 expected");
    attention_probabilities<float>(scores, c2p, p2c, mask);
  }
}

// The fused variant: probabilities [B*H, L, L] bf16 (written, never read); query [B, H, L, d] bf16, last
// dimension contiguous; keys packed [B, H, d/2, L + 16, 2]; pk and pq_rev packed [H, d/2, 16 + 2L - 1 + 32, 2]
// (tiled_attention.py); inv_scale: 1 / the attention scale, for q.k (pk and pq_rev are already divided).
void fused_attention_probabilities_(at::Tensor probabilities, const at::Tensor& query, const at::Tensor& keys,
                                    const at::Tensor& pk, const at::Tensor& pq_rev,
                                    const c10::optional<at::Tensor>& blocked, double inv_scale) {
  TORCH_CHECK(fused_supported(), "the fused kernel needs AVX-512 BF16");
  for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&probabilities, &query, &keys, &pk, &pq_rev}) {
    TORCH_CHECK(t->device().is_cpu() && t->scalar_type() == at::kBFloat16, "CPU bfloat16 tensors expected");
    TORCH_CHECK(t == &query || t->is_contiguous(), "contiguous tensors expected (but for the query)");
  }
  const int64_t length = probabilities.size(1), heads = query.size(1), d = query.size(3);
  TORCH_CHECK(probabilities.dim() == 3 && probabilities.size(2) == length && query.dim() == 4 &&
                  query.size(2) == length && query.size(0) * heads == probabilities.size(0) && d % 2 == 0,
              "probabilities [B*H, L, L] and query [B, H, L, d] (d even) expected");
  TORCH_CHECK(query.stride(3) == 1 && query.stride(0) % 2 == 0 && query.stride(1) % 2 == 0 &&
                  query.stride(2) % 2 == 0 && reinterpret_cast<uintptr_t>(query.data_ptr()) % 4 == 0,
              "the query's last dimension must be contiguous, its other strides even and its data 4-byte aligned");
  TORCH_CHECK(keys.dim() == 5 && keys.size(0) * keys.size(1) == probabilities.size(0) && keys.size(2) == d / 2 &&
                  keys.size(3) >= length + kRows && keys.size(4) == 2,
              "keys must be packed [B, H, d/2, L + 16, 2]");
  TORCH_CHECK(pk.sizes() == pq_rev.sizes() && pk.dim() == 4 && pk.size(0) == heads && pk.size(1) == d / 2 &&
                  pk.size(2) >= kLead + 2 * length - 1 + 2 * kRows && pk.size(3) == 2,
              "pk and pq_rev must be packed [H, d/2, 16 + 2L - 1 + 32, 2]");
  const bool* mask = mask_data(blocked, probabilities.size(0) / heads, length);
  fused_probabilities(probabilities, query, keys, pk, pq_rev, mask, static_cast<float>(inv_scale));
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("attention_probabilities_", &tiled_attention_probabilities_);
  m.def("fused_attention_probabilities_", &fused_attention_probabilities_);
  m.def("fused_supported", &fused_supported);
}

// Raw argument blocks of the layer backward kernels (RMSNorm, RoPE, SwiGLU, training attention),
// shared by their dispatchers and backends. Templates over the element type: the backends run f32,
// the reference twins also run f64 for the finite-difference tests. Internal to kernels/.
#pragma once

#include <cstdint>

namespace arle::kernels {

// RmsNormBackward (rmsnorm.h) over n_rows rows of n, in three passes: inv (rows), dw (columns),
// dx (rows). dw is read before dx is written because dx may alias dy.
template <typename T>
struct RmsNormBackwardParams {
  const T* x = nullptr;   // [n_rows, n]
  const T* w = nullptr;   // [n]
  const T* dy = nullptr;  // [n_rows, n]
  T* dx = nullptr;        // [n_rows, n]; may alias dy
  T* dw = nullptr;        // [n]; accumulated
  T* inv = nullptr;       // [n_rows] scratch: 1 / sqrt(mean(x^2) + eps) of each row
  bool accumulate_dx = false;
  int64_t n_rows = 0;
  int64_t n = 0;
  T eps = 0;
};

// ApplyRopeBackward (rope.h): dx = R^T dy per (token, head) with ApplyRope's rotation R.
template <typename T>
struct RopeBackwardParams {
  const T* dy = nullptr;   // [n_tok, n_head, head_dim]
  const T* cos = nullptr;  // [n_tok, head_dim / 2]
  const T* sin = nullptr;
  T* dx = nullptr;  // [n_tok, n_head, head_dim]; may alias dy
  int64_t n_head = 0;
  int64_t head_dim = 0;
};

// SwiGluBackward (elementwise.h), elementwise over equal-length arrays.
template <typename T>
struct SwiGluBackwardParams {
  const T* gate = nullptr;
  const T* up = nullptr;
  const T* dswiglu = nullptr;
  T* dgate = nullptr;
  T* dup = nullptr;
};

// CausalAttention and CausalAttentionBackward (attention.h): n_seq sequences of seq_len rows laid
// out back to back, each causal over its own rows. dq/dk/dv are written by the backward only.
template <typename T>
struct CausalAttentionParams {
  const T* q = nullptr;     // [n_seq * seq_len, n_head, head_dim]
  const T* k = nullptr;     // [n_seq * seq_len, n_head_kv, head_dim]
  const T* v = nullptr;     // [n_seq * seq_len, n_head_kv, head_dim]
  T* out = nullptr;         // [n_seq * seq_len, n_head, head_dim]: written by the forward
  T* lse = nullptr;         // [n_seq * seq_len, n_head]: written by the forward
  const T* dout = nullptr;  // [n_seq * seq_len, n_head, head_dim]
  T* dq = nullptr;          // q's shape
  T* dk = nullptr;          // k's shape
  T* dv = nullptr;          // v's shape
  int64_t n_seq = 0;
  int64_t seq_len = 0;
  int64_t n_head = 0;
  int64_t n_head_kv = 0;
  int64_t head_dim = 0;
  T scale = 0;
};

}  // namespace arle::kernels

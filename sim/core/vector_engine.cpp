#include "sim/core/vector_engine.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "isa/numerics.h"
#include "sim/core/core_context.h"

namespace infsim::sim {

VectorEngine::VectorEngine(sc_core::sc_module_name name, CoreContext& core)
    : EngineBase(name, core, isa::Engine::vector) {}

namespace {

// The vector ALU with the operator as a template parameter, so that the
// loops over elements compile to straight-line (vectorisable) code.
template <isa::AluOp Op>
inline float alu(float a, float b) {
  using isa::AluOp;
  auto i32 = [](float v) { return numerics::f32_to_int32(v); };
  if constexpr (Op == AluOp::add) return a + b;
  if constexpr (Op == AluOp::sub) return a - b;
  if constexpr (Op == AluOp::mul) return a * b;
  if constexpr (Op == AluOp::div) return a / b;
  // IEEE maxNum/minNum: a NaN operand yields the other operand.
  if constexpr (Op == AluOp::max) return std::fmax(a, b);
  if constexpr (Op == AluOp::min) return std::fmin(a, b);
  if constexpr (Op == AluOp::eq) return a == b ? 1.0f : 0.0f;
  if constexpr (Op == AluOp::ne) return a != b ? 1.0f : 0.0f;
  if constexpr (Op == AluOp::lt) return a < b ? 1.0f : 0.0f;
  if constexpr (Op == AluOp::le) return a <= b ? 1.0f : 0.0f;
  if constexpr (Op == AluOp::gt) return a > b ? 1.0f : 0.0f;
  if constexpr (Op == AluOp::ge) return a >= b ? 1.0f : 0.0f;
  if constexpr (Op == AluOp::bitwise_and) return static_cast<float>(i32(a) & i32(b));
  if constexpr (Op == AluOp::bitwise_or) return static_cast<float>(i32(a) | i32(b));
  if constexpr (Op == AluOp::bitwise_xor) return static_cast<float>(i32(a) ^ i32(b));
  if constexpr (Op == AluOp::bypass) return a;
}

// Calls fn(f) with f(a, b) the operator: the switch stays outside the element loop.
template <typename Fn>
void for_op(isa::AluOp op, Fn&& fn) {
  switch (op) {
#define INFSIM_ALU_CASE(name)                                         \
  case isa::AluOp::name:                                              \
    fn([](float a, float b) { return alu<isa::AluOp::name>(a, b); }); \
    return;
    INFSIM_ALU_CASE(add)
    INFSIM_ALU_CASE(sub)
    INFSIM_ALU_CASE(mul)
    INFSIM_ALU_CASE(div)
    INFSIM_ALU_CASE(max)
    INFSIM_ALU_CASE(min)
    INFSIM_ALU_CASE(eq)
    INFSIM_ALU_CASE(ne)
    INFSIM_ALU_CASE(lt)
    INFSIM_ALU_CASE(le)
    INFSIM_ALU_CASE(gt)
    INFSIM_ALU_CASE(ge)
    INFSIM_ALU_CASE(bitwise_and)
    INFSIM_ALU_CASE(bitwise_or)
    INFSIM_ALU_CASE(bitwise_xor)
    INFSIM_ALU_CASE(bypass)
#undef INFSIM_ALU_CASE
  }
}

}  // namespace

float alu(isa::AluOp op, float a, float b) {
  float r = a;
  for_op(op, [&](auto f) { r = f(a, b); });
  return r;
}

EngineBase::Cost VectorEngine::execute(const isa::Instruction& ins) {
  const Cost c = cost(ins);  // also rejects instructions this engine does not run
  if (values_) compute(ins);
  return c;
}

// Timing depends only on shapes and operand places, never on values.
EngineBase::Cost VectorEngine::cost(const isa::Instruction& ins) const {
  if (const auto* x = std::get_if<isa::TensorTensor>(&ins)) return streaming(free_size(x->in0), {&x->in0, &x->in1});
  if (const auto* x = std::get_if<isa::TensorScalar>(&ins)) return streaming(free_size(x->src), {&x->src});
  if (const auto* x = std::get_if<isa::TensorReduce>(&ins)) return streaming(free_size(x->src), {&x->src});
  if (const auto* x = std::get_if<isa::TensorCopy>(&ins)) return streaming(free_size(x->src), {&x->src});
  if (const auto* x = std::get_if<isa::Transpose>(&ins)) return streaming(32, {&x->src});
  if (const auto* x = std::get_if<isa::BnStats>(&ins)) return streaming(free_size(x->src), {&x->src});
  if (const auto* x = std::get_if<isa::BnAggr>(&ins)) return streaming(free_size(x->src), {&x->src});
  if (const auto* x = std::get_if<isa::Select>(&ins))
    return streaming(free_size(x->dst), {&x->pred, &x->in0, &x->in1});
  if (const auto* x = std::get_if<isa::Memset>(&ins)) return streaming(free_size(x->dst), {});
  if (const auto* x = std::get_if<isa::Iota>(&ins)) return streaming(free_size(x->dst), {});
  if (const auto* x = std::get_if<isa::Reciprocal>(&ins)) return streaming(free_size(x->src), {&x->src});
  throw DeviceFault("instruction not implemented by the vector engine");
}

void VectorEngine::compute(const isa::Instruction& ins) {
  auto read = [&](const isa::AccessPattern& ap, std::vector<float>& buf) {
    buf.resize(size_t{ap.part_count} * free_size(ap));
    core_.memory(ap.space).read(ap, buf.data());
  };
  auto write = [&](const isa::AccessPattern& ap, const std::vector<float>& buf) {
    core_.memory(ap.space).write(ap, buf.data(), rounding_);
  };

  if (const auto* x = std::get_if<isa::TensorTensor>(&ins)) {
    read(x->in0, a_);
    read(x->in1, b_);
    for_op(x->op, [&](auto f) {
      float* a = a_.data();
      const float* b = b_.data();
      for (size_t i = 0, n = a_.size(); i < n; ++i) a[i] = f(a[i], b[i]);
    });
    write(x->dst, a_);
    // Two SBUF operands share the read port; reading one from PSUM halves that.
    return;
  }
  if (const auto* x = std::get_if<isa::TensorScalar>(&ins)) {
    read(x->src, a_);
    const uint64_t n = free_size(x->src);
    const uint32_t p = x->src.part_count;
    auto scalars = [&](const isa::AccessPattern& col, float imm, std::vector<float>& buf) {
      if (col.space == isa::Space::none)
        buf.assign(p, imm);
      else
        read(col, buf);
    };
    scalars(x->col0, x->imm0, b_);
    scalars(x->col1, x->imm1, c_);
    for_op(x->op0, [&](auto f0) {
      for_op(x->op1, [&](auto f1) {
        for (uint32_t pi = 0; pi < p; ++pi) {
          float* v = a_.data() + pi * n;
          const float s0 = b_[pi], s1 = c_[pi];
          for (uint64_t i = 0; i < n; ++i) v[i] = f1(f0(v[i], s0), s1);
        }
      });
    });
    write(x->dst, a_);
    return;
  }
  if (const auto* x = std::get_if<isa::TensorReduce>(&ins)) {
    read(x->src, a_);
    uint64_t inner = 1;
    for (uint32_t i = x->src.ndim - x->axes; i < x->src.ndim; ++i) inner *= x->src.dims[i].num;
    const uint64_t groups = a_.size() / inner;  // partitions x kept outer elements
    b_.resize(groups);
    for_op(x->op, [&](auto f) {
      for (uint64_t g = 0; g < groups; ++g) {
        float acc = a_[g * inner];
        for (uint64_t i = 1; i < inner; ++i) acc = f(acc, a_[g * inner + i]);
        b_[g] = acc;
      }
    });
    write(x->dst, b_);
    return;
  }
  if (const auto* x = std::get_if<isa::TensorCopy>(&ins)) {
    read(x->src, a_);
    write(x->dst, a_);
    return;
  }
  if (const auto* x = std::get_if<isa::Transpose>(&ins)) {
    read(x->src, a_);
    const uint32_t rows = x->src.part_count;
    const uint64_t cols = free_size(x->src);
    b_.resize(a_.size());
    for (uint32_t r = 0; r < rows; ++r)
      for (uint64_t c = 0; c < cols; ++c) b_[c * rows + r] = a_[r * cols + c];
    write(x->dst, b_);
    return;
  }
  if (const auto* x = std::get_if<isa::BnStats>(&ins)) {
    read(x->src, a_);
    const uint64_t n = free_size(x->src);
    b_.resize(size_t{x->src.part_count} * 3);
    for (uint32_t p = 0; p < x->src.part_count; ++p) {
      // Welford: numerically stable running mean and sum of squared deviations.
      float mean = 0.0f, m2 = 0.0f;
      for (uint64_t i = 0; i < n; ++i) {
        const float v = a_[p * n + i];
        const float delta = v - mean;
        mean += delta / static_cast<float>(i + 1);
        m2 += delta * (v - mean);
      }
      b_[p * 3] = static_cast<float>(n);
      b_[p * 3 + 1] = mean;
      b_[p * 3 + 2] = m2 / static_cast<float>(n);
    }
    write(x->dst, b_);
    return;
  }
  if (const auto* x = std::get_if<isa::BnAggr>(&ins)) {
    read(x->src, a_);
    const uint64_t k = free_size(x->src) / 3;
    b_.resize(size_t{x->src.part_count} * 2);
    for (uint32_t p = 0; p < x->src.part_count; ++p) {
      // Chan et al.: merge (count, mean, M2) groups in order.
      float count = 0.0f, mean = 0.0f, m2 = 0.0f;
      for (uint64_t g = 0; g < k; ++g) {
        const float nb = a_[p * 3 * k + 3 * g], mb = a_[p * 3 * k + 3 * g + 1], vb = a_[p * 3 * k + 3 * g + 2];
        if (nb == 0.0f) continue;
        const float total = count + nb;
        const float delta = mb - mean;
        mean += delta * (nb / total);
        m2 += vb * nb + delta * delta * (count * nb / total);
        count = total;
      }
      b_[p * 2] = mean;
      b_[p * 2 + 1] = count > 0.0f ? m2 / count : 0.0f;
    }
    write(x->dst, b_);
    return;
  }
  if (const auto* x = std::get_if<isa::Select>(&ins)) {
    read(x->pred, c_);
    read(x->in0, a_);
    read(x->in1, b_);
    for (size_t i = 0; i < a_.size(); ++i) a_[i] = c_[i] != 0.0f ? a_[i] : b_[i];
    write(x->dst, a_);
    return;
  }
  if (const auto* x = std::get_if<isa::Memset>(&ins)) {
    a_.assign(size_t{x->dst.part_count} * free_size(x->dst), x->value);
    write(x->dst, a_);
    return;
  }
  if (const auto* x = std::get_if<isa::Iota>(&ins)) {
    const uint64_t n = free_size(x->dst);
    a_.resize(size_t{x->dst.part_count} * n);
    for (uint32_t p = 0; p < x->dst.part_count; ++p)
      for (uint64_t i = 0; i < n; ++i) {
        // INT32 arithmetic with two's-complement wrap-around.
        const uint32_t v = static_cast<uint32_t>(x->base) + p * static_cast<uint32_t>(x->part_mul) +
                           static_cast<uint32_t>(i) * static_cast<uint32_t>(x->free_mul);
        a_[p * n + i] = static_cast<float>(static_cast<int32_t>(v));
      }
    write(x->dst, a_);
    return;
  }
  if (const auto* x = std::get_if<isa::Reciprocal>(&ins)) {
    read(x->src, a_);
    for (float& v : a_) v = 1.0f / v;
    write(x->dst, a_);
    return;
  }
}

}  // namespace infsim::sim

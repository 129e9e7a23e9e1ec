// The vector/scalar engines' streaming-instruction timing (stream_timing plus
// the engine's in-order issue and retirement) against a cycle-by-cycle model
// of the engine: an SBUF read port and a PSUM read port each delivering one
// element per cycle, a dispatch stage that holds each instruction for at
// least the fixed cost, and a write pipeline of fixed depth. Back-to-back
// instruction sequences must retire on the same cycles.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <vector>

#include "sim/core/engine.h"

using infsim::sim::stream_timing;

namespace {

struct Instr {
  uint64_t elements;
  unsigned sbuf_inputs, psum_inputs;
};

constexpr uint64_t kMin = 64, kLatency = 60;

// Cycle by cycle: returns each instruction's retirement cycle.
std::vector<uint64_t> reference(const std::vector<Instr>& prog) {
  std::vector<uint64_t> retired;
  uint64_t c = 0;
  for (const Instr& in : prog) {
    const uint64_t start = c;
    // Reads: each cycle the SBUF port and the PSUM port each read one
    // operand element; an element is complete when all its operands are read.
    uint64_t sbuf_left = in.elements * in.sbuf_inputs, psum_left = in.elements * in.psum_inputs;
    uint64_t elements_done = 0, last_write = start;
    uint64_t sbuf_read = 0, psum_read = 0;
    const bool outputs_only = in.sbuf_inputs == 0 && in.psum_inputs == 0;
    for (uint64_t t = start; elements_done < in.elements; ++t) {
      if (outputs_only) {
        ++elements_done;  // one result per cycle from the generator
      } else {
        if (sbuf_left) --sbuf_left, ++sbuf_read;
        if (psum_left) --psum_left, ++psum_read;
        // Elements complete in order as their last operand arrives.
        while (elements_done < in.elements && sbuf_read >= (elements_done + 1) * in.sbuf_inputs &&
               psum_read >= (elements_done + 1) * in.psum_inputs)
          ++elements_done;
      }
      last_write = t + kLatency;  // written kLatency cycles after the cycle of its last read
      c = t + 1;
    }
    // Dispatch holds the engine at least kMin cycles.
    c = std::max(c, start + kMin);
    retired.push_back(std::max(c, last_write + 1));  // complete once that cycle is over
  }
  // Retirement is in order.
  for (size_t i = 1; i < retired.size(); ++i) retired[i] = std::max(retired[i], retired[i - 1]);
  return retired;
}

// The fast model, as EngineBase applies it.
std::vector<uint64_t> fast(const std::vector<Instr>& prog) {
  std::vector<uint64_t> retired;
  uint64_t now = 0, last = 0;
  for (const Instr& in : prog) {
    const auto t = stream_timing(in.elements, in.sbuf_inputs, in.psum_inputs, kMin, kLatency);
    last = std::max(last, now + t.retire);
    retired.push_back(last);
    now += t.occupancy;
  }
  return retired;
}

}  // namespace

TEST(StreamPipeline, FastTimingMatchesTheCycleModel) {
  std::mt19937 rng(5);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<Instr> prog;
    for (int i = 0; i < 12; ++i)
      prog.push_back({1 + rng() % (rng() % 2 ? 40 : 600), static_cast<unsigned>(rng() % 3),
                      static_cast<unsigned>(rng() % 2)});
    ASSERT_EQ(fast(prog), reference(prog)) << "trial " << trial;
  }
}

TEST(StreamPipeline, Boundaries) {
  // Reads at the dispatch floor: 64 elements of one operand take exactly 64 cycles.
  EXPECT_EQ(stream_timing(64, 1, 0, kMin, kLatency).occupancy, 64u);
  EXPECT_EQ(stream_timing(65, 1, 0, kMin, kLatency).occupancy, 65u);
  // Two SBUF operands halve the rate; one in PSUM reads in parallel.
  EXPECT_EQ(stream_timing(100, 2, 0, kMin, kLatency).reads, 200u);
  EXPECT_EQ(stream_timing(100, 1, 1, kMin, kLatency).reads, 100u);
  EXPECT_EQ(stream_timing(100, 0, 2, kMin, kLatency).reads, 200u);
  // Retirement: last write, or the dispatch floor when that is later.
  EXPECT_EQ(stream_timing(2, 1, 0, kMin, kLatency).retire, 64u);
  EXPECT_EQ(stream_timing(5, 1, 0, kMin, kLatency).retire, 65u);
}

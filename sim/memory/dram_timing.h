// DRAM channel timing: bank groups, banks, row buffers, refresh, and the
// JEDEC-style constraints between commands, in DRAM clock cycles.
//
// Policy (shared by the fast model here and the cycle-by-cycle reference in
// tests/cpp/test_dram_timing.cpp, which must agree exactly):
//   * bursts are served one at a time, in the order they are handed to the
//     channel (open-page policy); in the chip, initiators annotate future
//     arrival times (loosely timed), so that order can differ from arrival order;
//   * the controller takes the next burst at pick = max(arrival, cycle after
//     the previous command); if a refresh is due by then, it first
//     precharges every open bank (in bank order) and issues REF;
//   * a burst needs [PRE if another row is open] [ACT if no row is open] then
//     RD or WR, each command at the earliest cycle every constraint allows,
//     at most one command per cycle;
//   * a read completes when its data has left the bus (RD + CL + burst),
//     a write when its data has been taken (WR + CWL + burst).
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <vector>

namespace infsim::sim {

struct DramTimingParams {
  // Geometry of one channel.
  uint32_t bank_groups = 4;
  uint32_t banks_per_group = 4;
  uint32_t row_bytes = 8192;   // one row across the channel's devices
  uint32_t burst_bytes = 64;   // bus bytes x burst length
  uint32_t burst_cycles = 4;   // data bus cycles per burst (BL/2 for DDR)
  // Constraints, in DRAM clock cycles.
  uint32_t tRCD = 22, tRP = 22, tCL = 22, tCWL = 16, tRAS = 52, tRC = 74;
  uint32_t tCCD_S = 4, tCCD_L = 8, tRRD_S = 4, tRRD_L = 8, tFAW = 34;
  uint32_t tWR = 24, tWTR_S = 4, tWTR_L = 12, tRTP = 12, tRTW = 12;
  uint32_t tRFC = 560, tREFI = 12480;

  uint32_t banks() const { return bank_groups * banks_per_group; }
};

enum class DramCommand : uint8_t { ACT, PRE, RD, WR, REF };

// Where a burst lands: [row][bank][column][bank group][byte in burst].
// Consecutive bursts rotate over the bank groups (tCCD_S apart, not tCCD_L),
// and a sequential stream keeps one open row per bank group until it has
// read bank_groups x row_bytes.
struct DramAddress {
  uint32_t bank;  // bank_group * banks_per_group + bank in group
  uint32_t bank_group;
  uint64_t row;
};
DramAddress decode_dram_address(const DramTimingParams& p, uint64_t channel_offset);

struct DramChannelStats {
  uint64_t reads = 0, writes = 0;  // bursts
  uint64_t row_hits = 0, row_misses = 0, row_conflicts = 0;  // open row / closed bank / other row open
  uint64_t activates = 0, precharges = 0, refreshes = 0;
};

// The fast model: the earliest legal cycle of each command from summarised
// state, one max() per constraint.
class DramChannelTiming {
 public:
  explicit DramChannelTiming(const DramTimingParams& p);
  // Serves one burst arriving at cycle `arrival`; returns its completion cycle.
  int64_t access(int64_t arrival, uint64_t channel_offset, bool write);
  // Serves `count` bursts at consecutive channel offsets from channel_offset,
  // all arriving at `arrival`, in order; returns the latest completion. The
  // same as access() for each (tests/cpp/test_dram_timing.cpp compares
  // them), with the address stepped from burst to burst rather than decoded
  // anew.
  int64_t access_run(int64_t arrival, uint64_t channel_offset, uint64_t count, bool write);
  const DramChannelStats& stats() const { return stats_; }
  // All banks closed, statistics cleared, the first refresh due at tREFI.
  void reset();

 private:
  // "Never happened": far enough in the past that every constraint from it is met.
  static constexpr int64_t kNone = -(int64_t{1} << 40);
  struct Bank {
    bool open = false;
    uint64_t row = 0;
    int64_t act = kNone, pre = kNone, rd = kNone, wr = kNone;  // last command cycles
  };
  int64_t serve(int64_t arrival, const DramAddress& a, bool write);
  int64_t issue(int64_t earliest);  // the first cycle >= earliest after the previous command
  void precharge(uint32_t bank, int64_t not_before);
  void activate(uint32_t bank, uint32_t group, uint64_t row, int64_t not_before);
  void refresh(int64_t not_before);

  DramTimingParams p_;
  std::vector<Bank> banks_;
  std::vector<int64_t> group_col_, group_wr_, group_act_;  // last column command / write / ACT per bank group
  int64_t last_col_ = kNone, last_rd_ = kNone, last_wr_ = kNone, last_act_ = kNone;
  std::deque<int64_t> acts_;  // the last four ACTs, for tFAW
  int64_t last_ref_ = kNone, last_cmd_ = kNone;
  int64_t next_refresh_ = 0;
  DramChannelStats stats_;
};

}  // namespace infsim::sim

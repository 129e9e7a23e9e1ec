// The DRAM channel's fast timing model against a cycle-by-cycle reference:
// the reference steps one cycle at a time, keeps a log of every command and
// accepts a command only if no constraint against the log is violated. Both
// follow the controller policy of sim/memory/dram_timing.h and must agree on every
// completion cycle. The reference's constraints are probed at their exact
// boundaries (N-1 cycles refused, N accepted).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <deque>
#include <random>
#include <tuple>
#include <vector>

#include "sim/memory/dram_timing.h"

using namespace infsim::sim;

namespace {

struct Logged {
  int64_t cycle;
  DramCommand cmd;
  uint32_t bank, group;
};

class ReferenceChannel {
 public:
  explicit ReferenceChannel(const DramTimingParams& p) : p_(p), open_(p.banks(), false), row_(p.banks(), 0) {}

  // Whether `cmd` on `bank` may issue at `cycle`, given everything issued so far.
  bool legal(DramCommand cmd, uint32_t bank, int64_t cycle) const {
    if (!log_.empty() && cycle <= log_.back().cycle) return false;  // one command per cycle, in order
    const uint32_t group = bank / p_.banks_per_group;
    const int64_t wr_end = p_.tCWL + p_.burst_cycles;
    int acts_in_window = 0;
    for (auto it = log_.rbegin(); it != log_.rend(); ++it) {
      const int64_t gap = cycle - it->cycle;
      if (gap > 4096) break;  // longer than any constraint
      const bool same_bank = it->bank == bank, same_group = it->group == group;
      switch (cmd) {
        case DramCommand::ACT:
          if (it->cmd == DramCommand::PRE && same_bank && gap < p_.tRP) return false;
          if (it->cmd == DramCommand::ACT && same_bank && gap < p_.tRC) return false;
          if (it->cmd == DramCommand::ACT && gap < (same_group ? p_.tRRD_L : p_.tRRD_S)) return false;
          if (it->cmd == DramCommand::ACT && gap < p_.tFAW && ++acts_in_window >= 4) return false;
          if (it->cmd == DramCommand::REF && gap < p_.tRFC) return false;
          break;
        case DramCommand::PRE:
          if (!same_bank) break;
          if (it->cmd == DramCommand::ACT && gap < p_.tRAS) return false;
          if (it->cmd == DramCommand::RD && gap < p_.tRTP) return false;
          if (it->cmd == DramCommand::WR && gap < wr_end + p_.tWR) return false;
          break;
        case DramCommand::RD:
        case DramCommand::WR: {
          const bool col = it->cmd == DramCommand::RD || it->cmd == DramCommand::WR;
          if (it->cmd == DramCommand::ACT && same_bank && gap < p_.tRCD) return false;
          if (col && gap < (same_group ? p_.tCCD_L : p_.tCCD_S)) return false;
          if (cmd == DramCommand::RD && it->cmd == DramCommand::WR &&
              gap < wr_end + (same_group ? p_.tWTR_L : p_.tWTR_S))
            return false;
          if (cmd == DramCommand::WR && it->cmd == DramCommand::RD && gap < p_.tRTW) return false;
          break;
        }
        case DramCommand::REF:
          if (it->cmd == DramCommand::PRE && gap < p_.tRP) return false;
          if (it->cmd == DramCommand::ACT && gap < p_.tRC) return false;
          if (it->cmd == DramCommand::REF && gap < p_.tRFC) return false;
          break;
      }
    }
    // Bank state requirements.
    switch (cmd) {
      case DramCommand::ACT: return !open_[bank];
      case DramCommand::PRE: return open_[bank];
      case DramCommand::RD:
      case DramCommand::WR: return open_[bank];
      case DramCommand::REF: return std::none_of(open_.begin(), open_.end(), [](bool o) { return o; });
    }
    return false;
  }

  void record(DramCommand cmd, uint32_t bank, int64_t cycle, uint64_t row = 0) {
    ASSERT_TRUE(legal(cmd, bank, cycle));
    log_.push_back({cycle, cmd, bank, bank / p_.banks_per_group});
    if (cmd == DramCommand::ACT) {
      open_[bank] = true;
      row_[bank] = row;
    }
    if (cmd == DramCommand::PRE) open_[bank] = false;
  }

  struct Request {
    int64_t arrival;
    uint64_t offset;
    bool write;
  };

  // Serves requests in order, one cycle at a time; returns completion cycles.
  std::vector<int64_t> run(const std::vector<Request>& reqs) {
    std::vector<int64_t> done;
    size_t next = 0;
    bool busy = false, refreshing = false;
    DramAddress cur{};
    int64_t next_refresh = p_.tREFI;
    for (int64_t c = 0; done.size() < reqs.size(); ++c) {
      if (!busy && !refreshing) {
        if (c >= next_refresh) {
          refreshing = true;
        } else if (next < reqs.size() && reqs[next].arrival <= c) {
          busy = true;
          cur = decode_dram_address(p_, reqs[next].offset);
        }
      }
      if (refreshing) {
        auto open = std::find(open_.begin(), open_.end(), true);
        if (open != open_.end()) {
          const uint32_t b = static_cast<uint32_t>(open - open_.begin());
          if (legal(DramCommand::PRE, b, c)) record(DramCommand::PRE, b, c);
        } else if (legal(DramCommand::REF, 0, c)) {
          record(DramCommand::REF, 0, c);
          next_refresh += p_.tREFI;
          refreshing = false;
        }
        continue;
      }
      if (!busy) continue;
      const Request& r = reqs[next];
      if (open_[cur.bank] && row_[cur.bank] != cur.row) {
        if (legal(DramCommand::PRE, cur.bank, c)) record(DramCommand::PRE, cur.bank, c);
      } else if (!open_[cur.bank]) {
        if (legal(DramCommand::ACT, cur.bank, c)) record(DramCommand::ACT, cur.bank, c, cur.row);
      } else {
        const DramCommand col = r.write ? DramCommand::WR : DramCommand::RD;
        if (legal(col, cur.bank, c)) {
          record(col, cur.bank, c);
          done.push_back(c + (r.write ? p_.tCWL : p_.tCL) + p_.burst_cycles);
          busy = false;
          ++next;
        }
      }
    }
    return done;
  }

 private:
  DramTimingParams p_;
  std::vector<bool> open_;
  std::vector<uint64_t> row_;
  std::vector<Logged> log_;
};

DramTimingParams ddr4() { return DramTimingParams{}; }

// An HBM-like set: 4 bank groups of 4, shorter rows, short bursts.
DramTimingParams hbm() {
  DramTimingParams p;
  p.bank_groups = 4;
  p.banks_per_group = 4;
  p.row_bytes = 1024;
  p.burst_bytes = 32;
  p.burst_cycles = 2;
  p.tRCD = 14, p.tRP = 14, p.tCL = 14, p.tCWL = 4, p.tRAS = 33, p.tRC = 47;
  p.tCCD_S = 2, p.tCCD_L = 4, p.tRRD_S = 4, p.tRRD_L = 6, p.tFAW = 16;
  p.tWR = 16, p.tWTR_S = 4, p.tWTR_L = 8, p.tRTP = 4, p.tRTW = 18;
  p.tRFC = 350, p.tREFI = 3900;
  return p;
}

std::vector<ReferenceChannel::Request> random_stream(const DramTimingParams& p, uint32_t seed, size_t n) {
  std::mt19937_64 rng(seed);
  std::vector<ReferenceChannel::Request> reqs;
  int64_t t = 0;
  uint64_t addr = 0;
  for (size_t i = 0; i < n; ++i) {
    switch (rng() % 4) {
      case 0: addr = (rng() % (1u << 26)) / p.burst_bytes * p.burst_bytes; break;  // random row
      case 1: addr += p.row_bytes * (1 + rng() % 3); break;                        // neighbouring rows
      default: addr += p.burst_bytes; break;                                       // sequential
    }
    const uint64_t gap = rng() % 16 == 0 ? rng() % 20000 : rng() % 8;  // sometimes idle past a refresh
    t += static_cast<int64_t>(gap);
    reqs.push_back({t, addr, rng() % 3 == 0});
  }
  return reqs;
}

void expect_agreement(const DramTimingParams& p, uint32_t seed) {
  const auto reqs = random_stream(p, seed, 3000);
  ReferenceChannel ref(p);
  const auto expected = ref.run(reqs);
  DramChannelTiming fast(p);
  for (size_t i = 0; i < reqs.size(); ++i)
    ASSERT_EQ(fast.access(reqs[i].arrival, reqs[i].offset, reqs[i].write), expected[i])
        << "request " << i << " seed " << seed;
  EXPECT_GT(fast.stats().refreshes, 0u);
  EXPECT_GT(fast.stats().row_hits, 0u);
  EXPECT_GT(fast.stats().row_conflicts, 0u);
}

}  // namespace

TEST(DramTiming, FastModelMatchesCycleReferenceDdr4) {
  for (uint32_t seed = 1; seed <= 4; ++seed) expect_agreement(ddr4(), seed);
}

TEST(DramTiming, FastModelMatchesCycleReferenceHbm) {
  for (uint32_t seed = 11; seed <= 14; ++seed) expect_agreement(hbm(), seed);
}

// Each constraint at its boundary: a command N-1 cycles after the one that
// constrains it is refused, N cycles after it is accepted.
TEST(DramTiming, ReferenceConstraintBoundaries) {
  const DramTimingParams p = ddr4();
  const uint32_t bank0 = 0, bank_other_group = p.banks_per_group, bank_same_group = 1;
  auto fresh = [&] { return ReferenceChannel(p); };
  {
    auto r = fresh();  // tRCD: ACT -> RD
    r.record(DramCommand::ACT, bank0, 0);
    EXPECT_FALSE(r.legal(DramCommand::RD, bank0, p.tRCD - 1));
    EXPECT_TRUE(r.legal(DramCommand::RD, bank0, p.tRCD));
  }
  {
    auto r = fresh();  // tRAS: ACT -> PRE; tRP: PRE -> ACT; tRC: ACT -> ACT
    r.record(DramCommand::ACT, bank0, 0);
    EXPECT_FALSE(r.legal(DramCommand::PRE, bank0, p.tRAS - 1));
    EXPECT_TRUE(r.legal(DramCommand::PRE, bank0, p.tRAS));
    r.record(DramCommand::PRE, bank0, p.tRAS);
    const int64_t act = std::max<int64_t>(p.tRAS + p.tRP, p.tRC);
    EXPECT_FALSE(r.legal(DramCommand::ACT, bank0, act - 1));
    EXPECT_TRUE(r.legal(DramCommand::ACT, bank0, act));
  }
  {
    auto r = fresh();  // tRRD_S / tRRD_L
    r.record(DramCommand::ACT, bank0, 0);
    EXPECT_FALSE(r.legal(DramCommand::ACT, bank_other_group, p.tRRD_S - 1));
    EXPECT_TRUE(r.legal(DramCommand::ACT, bank_other_group, p.tRRD_S));
    EXPECT_FALSE(r.legal(DramCommand::ACT, bank_same_group, p.tRRD_L - 1));
    EXPECT_TRUE(r.legal(DramCommand::ACT, bank_same_group, p.tRRD_L));
  }
  {
    auto r = fresh();  // tFAW: the fifth ACT
    for (uint32_t i = 0; i < 4; ++i) r.record(DramCommand::ACT, i * p.banks_per_group, i * p.tRRD_S);
    EXPECT_FALSE(r.legal(DramCommand::ACT, 1, p.tFAW - 1));
    EXPECT_TRUE(r.legal(DramCommand::ACT, 1, p.tFAW));
  }
  {
    auto r = fresh();  // tCCD_S / tCCD_L, tRTP, tRTW
    r.record(DramCommand::ACT, bank0, 0);
    r.record(DramCommand::ACT, bank_other_group, p.tRRD_S);
    r.record(DramCommand::ACT, bank_same_group, p.tRRD_L);
    const int64_t rd = p.tRRD_L + p.tRCD;
    r.record(DramCommand::RD, bank0, rd);
    EXPECT_FALSE(r.legal(DramCommand::RD, bank_other_group, rd + p.tCCD_S - 1));
    EXPECT_TRUE(r.legal(DramCommand::RD, bank_other_group, rd + p.tCCD_S));
    EXPECT_FALSE(r.legal(DramCommand::RD, bank_same_group, rd + p.tCCD_L - 1));
    EXPECT_TRUE(r.legal(DramCommand::RD, bank_same_group, rd + p.tCCD_L));
    EXPECT_FALSE(r.legal(DramCommand::WR, bank_other_group, rd + p.tRTW - 1));
    EXPECT_TRUE(r.legal(DramCommand::WR, bank_other_group, rd + std::max(p.tRTW, p.tCCD_S)));
    EXPECT_FALSE(r.legal(DramCommand::PRE, bank0, rd + p.tRTP - 1 < p.tRAS ? p.tRAS - 1 : rd + p.tRTP - 1));
    EXPECT_TRUE(r.legal(DramCommand::PRE, bank0, std::max<int64_t>(rd + p.tRTP, p.tRAS)));
  }
  {
    auto r = fresh();  // tWTR_S / tWTR_L, tWR
    r.record(DramCommand::ACT, bank0, 0);
    r.record(DramCommand::ACT, bank_other_group, p.tRRD_S);
    const int64_t wr = p.tRRD_S + p.tRCD;
    r.record(DramCommand::WR, bank0, wr);
    const int64_t end = wr + p.tCWL + p.burst_cycles;
    EXPECT_FALSE(r.legal(DramCommand::RD, bank_other_group, end + p.tWTR_S - 1));
    EXPECT_TRUE(r.legal(DramCommand::RD, bank_other_group, end + p.tWTR_S));
    EXPECT_FALSE(r.legal(DramCommand::PRE, bank0, end + p.tWR - 1));
    EXPECT_TRUE(r.legal(DramCommand::PRE, bank0, end + p.tWR));
  }
  {
    auto r = fresh();  // tRFC: REF -> ACT
    r.record(DramCommand::REF, 0, 10);
    EXPECT_FALSE(r.legal(DramCommand::ACT, bank0, 10 + p.tRFC - 1));
    EXPECT_TRUE(r.legal(DramCommand::ACT, bank0, 10 + p.tRFC));
  }
}

// The fast model's own view of the same boundaries: completion cycles of
// simple sequences follow from the constraints alone.
TEST(DramTiming, FastModelSimpleSequences) {
  const DramTimingParams p = ddr4();
  DramChannelTiming t(p);
  // Closed bank: ACT at 0, RD at tRCD.
  EXPECT_EQ(t.access(0, 0, false), p.tRCD + p.tCL + p.burst_cycles);
  // Row hit in the same bank group (bursts rotate over the groups): tCCD_L after the previous RD.
  EXPECT_EQ(t.access(0, uint64_t{p.burst_bytes} * p.bank_groups, false), p.tRCD + p.tCCD_L + p.tCL + p.burst_cycles);
  // Row conflict: PRE at tRAS, ACT tRP later, RD tRCD later.
  const uint64_t conflict = uint64_t{p.row_bytes} * p.banks();  // same bank, next row
  EXPECT_EQ(t.access(0, conflict, false), int64_t{p.tRAS} + p.tRP + p.tRCD + p.tCL + p.burst_cycles);
  EXPECT_EQ(t.stats().row_hits, 1u);
  EXPECT_EQ(t.stats().row_misses, 1u);
  EXPECT_EQ(t.stats().row_conflicts, 1u);
}

// access_run (a transaction's consecutive bursts, the address stepped from
// burst to burst) against access() burst by burst on a twin channel: the same
// latest completion, statistics and later behaviour, for runs that start and
// end anywhere (across columns, bank groups, banks and rows) and arrive
// anywhere relative to the refresh schedule.
namespace {

void expect_runs_agree(const DramTimingParams& p, const std::vector<std::array<int64_t, 4>>& runs) {
  DramChannelTiming bulk(p), single(p);
  for (size_t i = 0; i < runs.size(); ++i) {
    const auto [arrival, offset, count, write] = runs[i];
    int64_t want = arrival;
    for (int64_t j = 0; j < count; ++j)
      want = std::max(want, single.access(arrival, static_cast<uint64_t>(offset + j * p.burst_bytes), write != 0));
    ASSERT_EQ(bulk.access_run(arrival, static_cast<uint64_t>(offset), static_cast<uint64_t>(count), write != 0), want)
        << "run " << i << " at " << offset << " x " << count;
    const DramChannelStats &a = bulk.stats(), &b = single.stats();
    ASSERT_EQ(std::tie(a.reads, a.writes, a.row_hits, a.row_misses, a.row_conflicts, a.activates, a.precharges,
                       a.refreshes),
              std::tie(b.reads, b.writes, b.row_hits, b.row_misses, b.row_conflicts, b.activates, b.precharges,
                       b.refreshes))
        << "run " << i;
  }
}

void random_runs_agree(const DramTimingParams& p, uint32_t seed) {
  std::mt19937_64 rng(seed);
  const uint64_t span = uint64_t{p.row_bytes} * p.bank_groups;  // one row of every bank group
  std::vector<std::array<int64_t, 4>> runs;
  int64_t t = 0;
  uint64_t addr = 0;
  for (int i = 0; i < 400; ++i) {
    switch (rng() % 4) {
      case 0: addr = rng() % (uint64_t{1} << 28); break;                    // anywhere
      case 1: addr = (1 + rng() % 64) * span - p.burst_bytes * (rng() % 3); break;  // at a row boundary
      default: break;                                                        // where the last run ended
    }
    addr = addr / p.burst_bytes * p.burst_bytes;
    const int64_t count = 1 + static_cast<int64_t>(rng() % 3 ? rng() % 80 : rng() % (3 * span / p.burst_bytes));
    t += rng() % 8 == 0 ? static_cast<int64_t>(rng() % 20000) : static_cast<int64_t>(rng() % 200);
    runs.push_back({t, static_cast<int64_t>(addr), count, static_cast<int64_t>(rng() % 3 == 0)});
    addr += count * p.burst_bytes;
  }
  expect_runs_agree(p, runs);
}

}  // namespace

// Column spacing at the edge of what a stream of hits sustains: tCCD_L equal
// to, then just above, bank_groups x tCCD_S (the bank-group constraint
// binds); and tCCD_S = 0 (one command per cycle) with two bank groups.
DramTimingParams ccd_edge(uint32_t tccd_l) {
  DramTimingParams p = ddr4();
  p.tCCD_L = tccd_l;
  return p;
}
DramTimingParams two_groups() {
  DramTimingParams p = hbm();
  p.bank_groups = 2;
  p.tCCD_S = 0, p.tCCD_L = 2;
  return p;
}

TEST(DramTiming, RunsMatchBurstByBurstAccess) {
  for (uint32_t seed = 21; seed <= 24; ++seed) random_runs_agree(ddr4(), seed);
  for (uint32_t seed = 31; seed <= 34; ++seed) random_runs_agree(hbm(), seed);
  for (uint32_t seed = 41; seed <= 42; ++seed) {
    random_runs_agree(ccd_edge(16), seed);
    random_runs_agree(ccd_edge(17), seed);
    random_runs_agree(two_groups(), seed);
  }
}

TEST(DramTiming, RunsAcrossEveryAddressBoundaryAndRefresh) {
  for (const DramTimingParams& p : {ddr4(), hbm()}) {
    const int64_t span = int64_t{p.row_bytes} * p.bank_groups;
    // Two-burst runs straddling each field's carry: bank group, column, bank, row.
    std::vector<std::array<int64_t, 4>> runs;
    for (int64_t edge : {int64_t{p.burst_bytes} * p.bank_groups, span, span * p.banks_per_group,
                         span * p.banks_per_group * 3})
      for (int64_t back = 1; back <= 2; ++back) runs.push_back({0, edge - back * p.burst_bytes, 2 * back, 0});
    expect_runs_agree(p, runs);
    // A refresh falling due at every position of a run: arrivals swept across tREFI.
    for (int64_t arrival = p.tREFI - 400; arrival <= p.tREFI + 4; arrival += 3)
      expect_runs_agree(p, {{0, 0, 64, 0}, {arrival, span - 16 * p.burst_bytes, 64, arrival % 2}});
  }
}

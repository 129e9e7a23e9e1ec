#include "sim/dram_timing.h"

#include <algorithm>

namespace infsim::sim {

DramAddress decode_dram_address(const DramTimingParams& p, uint64_t channel_offset) {
  const uint64_t burst = channel_offset / p.burst_bytes;
  const uint64_t row_bursts = p.row_bytes / p.burst_bytes;
  DramAddress a;
  a.bank_group = static_cast<uint32_t>(burst % p.bank_groups);
  const uint64_t rest = burst / p.bank_groups / row_bursts;  // which row-sized span of each bank group
  a.bank = a.bank_group * p.banks_per_group + static_cast<uint32_t>(rest % p.banks_per_group);
  a.row = rest / p.banks_per_group;
  return a;
}

DramChannelTiming::DramChannelTiming(const DramTimingParams& p) : p_(p) { reset(); }

void DramChannelTiming::reset() {
  banks_.assign(p_.banks(), Bank{});
  group_col_.assign(p_.bank_groups, kNone);
  group_wr_.assign(p_.bank_groups, kNone);
  group_act_.assign(p_.bank_groups, kNone);
  last_col_ = last_rd_ = last_wr_ = last_act_ = last_ref_ = last_cmd_ = kNone;
  acts_.clear();
  next_refresh_ = p_.tREFI;
  stats_ = {};
}

int64_t DramChannelTiming::issue(int64_t earliest) {
  last_cmd_ = std::max(earliest, last_cmd_ + 1);
  return last_cmd_;
}

void DramChannelTiming::precharge(uint32_t bank, int64_t not_before) {
  Bank& b = banks_[bank];
  int64_t t = not_before;
  t = std::max(t, b.act + p_.tRAS);
  t = std::max(t, b.rd + p_.tRTP);
  t = std::max(t, b.wr + p_.tCWL + p_.burst_cycles + p_.tWR);
  b.pre = issue(t);
  b.open = false;
  ++stats_.precharges;
}

void DramChannelTiming::activate(uint32_t bank, uint32_t group, uint64_t row, int64_t not_before) {
  Bank& b = banks_[bank];
  int64_t t = not_before;
  t = std::max(t, b.pre + p_.tRP);
  t = std::max(t, b.act + p_.tRC);
  t = std::max(t, last_act_ + p_.tRRD_S);
  t = std::max(t, group_act_[group] + p_.tRRD_L);
  if (acts_.size() == 4) t = std::max(t, acts_.front() + p_.tFAW);
  t = std::max(t, last_ref_ + p_.tRFC);
  b.act = issue(t);
  b.open = true;
  b.row = row;
  last_act_ = group_act_[group] = b.act;
  acts_.push_back(b.act);
  if (acts_.size() > 4) acts_.pop_front();
  ++stats_.activates;
}

void DramChannelTiming::refresh(int64_t not_before) {
  for (uint32_t i = 0; i < banks_.size(); ++i)
    if (banks_[i].open) precharge(i, not_before);
  int64_t t = not_before;
  for (const Bank& b : banks_) {
    t = std::max(t, b.pre + p_.tRP);
    t = std::max(t, b.act + p_.tRC);
  }
  t = std::max(t, last_ref_ + p_.tRFC);
  last_ref_ = issue(t);
  ++stats_.refreshes;
}

int64_t DramChannelTiming::access(int64_t arrival, uint64_t channel_offset, bool write) {
  int64_t pick = std::max(arrival, last_cmd_ + 1);
  while (next_refresh_ <= pick) {
    refresh(next_refresh_);
    next_refresh_ += p_.tREFI;
    pick = std::max(pick, last_cmd_ + 1);
  }
  const DramAddress a = decode_dram_address(p_, channel_offset);
  Bank& b = banks_[a.bank];
  if (b.open && b.row == a.row) {
    ++stats_.row_hits;
  } else {
    if (b.open) {
      ++stats_.row_conflicts;
      precharge(a.bank, pick);
    } else {
      ++stats_.row_misses;
    }
    activate(a.bank, a.bank_group, a.row, pick);
  }
  int64_t t = pick;
  t = std::max(t, b.act + p_.tRCD);
  t = std::max(t, group_col_[a.bank_group] + p_.tCCD_L);
  t = std::max(t, last_col_ + p_.tCCD_S);
  if (write) {
    t = std::max(t, last_rd_ + p_.tRTW);
  } else {
    t = std::max(t, group_wr_[a.bank_group] + p_.tCWL + p_.burst_cycles + p_.tWTR_L);
    t = std::max(t, last_wr_ + p_.tCWL + p_.burst_cycles + p_.tWTR_S);
  }
  const int64_t col = issue(t);
  last_col_ = group_col_[a.bank_group] = col;
  if (write) {
    b.wr = last_wr_ = group_wr_[a.bank_group] = col;
    ++stats_.writes;
    return col + p_.tCWL + p_.burst_cycles;
  }
  b.rd = last_rd_ = col;
  ++stats_.reads;
  return col + p_.tCL + p_.burst_cycles;
}

}  // namespace infsim::sim

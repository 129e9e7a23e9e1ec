#include "sim/memory/dram_timing.h"

#include <algorithm>

namespace infsim::sim {

namespace {
// A burst's address split into its fields, from the least significant:
// bank group, column (burst within the row), bank in the group, row.
// next() steps to the following burst without dividing. The bursts that
// differ only in bank group and column form a row span: they use one open
// row in one bank of each group.
class BurstCursor {
 public:
  BurstCursor(const DramTimingParams& p, uint64_t channel_offset)
      : groups_(p.bank_groups), banks_(p.banks_per_group), row_bursts_(p.row_bytes / p.burst_bytes) {
    const uint64_t burst = channel_offset / p.burst_bytes;
    group_ = static_cast<uint32_t>(burst % groups_);
    const uint64_t span = burst / groups_;  // bursts of this bank group before this one
    column_ = span % row_bursts_;
    const uint64_t rest = span / row_bursts_;  // which row-sized span of each bank group
    bank_ = static_cast<uint32_t>(rest % banks_);
    row_ = rest / banks_;
  }
  DramAddress address() const { return {group_ * banks_ + bank_, group_, row_}; }
  uint64_t position() const { return column_ * groups_ + group_; }  // in the row span
  uint64_t span_left() const { return row_bursts_ * groups_ - position(); }  // this burst to the span's end
  void skip(uint64_t k) {  // k bursts ahead, k < span_left()
    const uint64_t pos = position() + k;
    group_ = static_cast<uint32_t>(pos % groups_);
    column_ = pos / groups_;
  }
  void next() {
    if (++group_ < groups_) return;
    group_ = 0;
    if (++column_ < row_bursts_) return;
    column_ = 0;
    if (++bank_ < banks_) return;
    bank_ = 0;
    ++row_;
  }

 private:
  uint32_t groups_, banks_;
  uint64_t row_bursts_;
  uint32_t group_, bank_;
  uint64_t column_, row_;
};
}  // namespace

DramAddress decode_dram_address(const DramTimingParams& p, uint64_t channel_offset) {
  return BurstCursor(p, channel_offset).address();
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

int64_t DramChannelTiming::serve(int64_t arrival, const DramAddress& a, bool write) {
  int64_t pick = std::max(arrival, last_cmd_ + 1);
  while (next_refresh_ <= pick) {
    refresh(next_refresh_);
    next_refresh_ += p_.tREFI;
    pick = std::max(pick, last_cmd_ + 1);
  }
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

int64_t DramChannelTiming::access(int64_t arrival, uint64_t channel_offset, bool write) {
  return serve(arrival, decode_dram_address(p_, channel_offset), write);
}

// A stream of row hits settles into one column command every `step` cycles
// (tCCD_S, at least one command cycle) when the bank-group constraint cannot
// bind: bank_groups x step >= tCCD_L. Once the last bank_groups bursts of the
// run were such hits in the current row span, every bank the span uses is
// open at the right row and each bank group's last column command is the one
// bank_groups bursts back. Burst i after that (i = 0, 1, ...) then has its
// pick at last + i step + 1 and every constraint met by last + (i + 1) step:
// tRCD (its bank's command in the window came after ACT + tRCD), tCCD_S,
// tCCD_L (bank_groups bursts back), and the arrival and the other
// direction's turnaround, which are the same for the whole run and were met
// by the window's commands. So as long as the bursts stay in the span and no
// refresh falls due, they are served in closed form: the same commands and
// state as serve() would produce.
int64_t DramChannelTiming::access_run(int64_t arrival, uint64_t channel_offset, uint64_t count, bool write) {
  const uint32_t groups = p_.bank_groups;
  const int64_t step = std::max<int64_t>(1, p_.tCCD_S);
  const bool streams = int64_t{groups} * step >= p_.tCCD_L;
  int64_t done = arrival;
  uint64_t streak = 0;  // bursts just served as row hits, each `step` after the one before
  for (BurstCursor c(p_, channel_offset); count > 0;) {
    const int64_t last = last_col_;
    if (streams && streak >= groups && c.position() >= groups && next_refresh_ > last + 1) {
      const uint64_t before_refresh = static_cast<uint64_t>((next_refresh_ - last - 2) / step) + 1;
      const uint64_t k = std::min({count, c.span_left(), before_refresh});
      // Only the last burst of each bank group leaves state behind.
      const uint64_t tail = std::min<uint64_t>(k, groups);
      c.skip(k - tail);
      for (uint64_t i = k - tail; i < k; ++i, c.next()) {
        const int64_t col = last + static_cast<int64_t>(i + 1) * step;
        const DramAddress a = c.address();
        group_col_[a.bank_group] = col;
        (write ? banks_[a.bank].wr : banks_[a.bank].rd) = col;
        if (write) group_wr_[a.bank_group] = col;
      }
      last_col_ = last_cmd_ = last + static_cast<int64_t>(k) * step;
      (write ? last_wr_ : last_rd_) = last_col_;
      (write ? stats_.writes : stats_.reads) += k;
      stats_.row_hits += k;
      done = std::max(done, last_col_ + (write ? p_.tCWL : p_.tCL) + p_.burst_cycles);
      count -= k;
      streak += k;
      continue;
    }
    const uint64_t hits = stats_.row_hits;
    done = std::max(done, serve(arrival, c.address(), write));
    streak = stats_.row_hits > hits && last_col_ == last + step ? streak + 1 : 0;
    c.next();
    --count;
  }
  return done;
}

}  // namespace infsim::sim

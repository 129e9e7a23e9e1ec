// Trace recording: what the simulator did and when, event by event, as it
// runs. Engines report each instruction (issue to completion) and each wait
// on a semaphore; writers turn the events into files (the Chrome trace-event
// JSON for Perfetto: python/infsim/tools/profile.py). Recording is off unless
// a recorder is attached, and bounded: after `limit` events the rest are
// counted, not kept.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace infsim::traces {

enum class EventKind : uint8_t {
  instruction = 0,     // [start, end): issue to completion (results written)
  semaphore_wait = 1,  // [start, end): the engine waited for its instruction's semaphores
  link_transfer = 2,   // [start, end): a transfer's data on a link lane, first packet ready to last arrived
};

constexpr uint32_t kHostEnd = 0xFFFFFFFF;  // a link end that is the host, not a chip

struct Event {
  uint64_t start_fs, end_fs;  // simulated time, femtoseconds
  uint32_t chip, core;        // instruction, wait: the core (on its chip); link: from chip, to chip (or kHostEnd)
  uint32_t pc;                // instruction index in the engine's stream (links: 0)
  uint8_t engine;             // isa::Engine (links: 0)
  EventKind kind;
  uint64_t bytes = 0;         // links: bytes moved
  uint8_t phase = 0;          // isa::Phase of the program the instruction is in (links: 0)
};

class Recorder {
 public:
  explicit Recorder(uint64_t limit) : limit_(limit) {}
  void record(const Event& e) {
    if (events_.size() < limit_)
      events_.push_back(e);
    else
      ++dropped_;
  }
  const std::vector<Event>& events() const { return events_; }
  uint64_t dropped() const { return dropped_; }
  uint64_t limit() const { return limit_; }

  // Counter tracks: amounts (bytes) added up in bins of bin_fs, per named
  // track ("chip0.dram.channel0"); kept whatever the event limit.
  static constexpr uint64_t kBinFs = 1'000'000'000;  // 1 us
  uint32_t track(const std::string& name) {
    for (uint32_t i = 0; i < tracks_.size(); ++i)
      if (tracks_[i] == name) return i;
    tracks_.push_back(name);
    bins_.emplace_back();
    return static_cast<uint32_t>(tracks_.size() - 1);
  }
  void add(uint32_t track, uint64_t time_fs, uint64_t amount) { bins_[track][time_fs / kBinFs] += amount; }
  const std::vector<std::string>& tracks() const { return tracks_; }
  const std::vector<std::map<uint64_t, uint64_t>>& bins() const { return bins_; }

 private:
  uint64_t limit_;
  std::vector<Event> events_;
  uint64_t dropped_ = 0;
  std::vector<std::string> tracks_;
  std::vector<std::map<uint64_t, uint64_t>> bins_;  // per track: bin -> amount
};

}  // namespace infsim::traces

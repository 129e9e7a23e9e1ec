// Performance counters: each has a component path, a name, a unit and a
// description, registered once by the component that increments it. Reports
// (stats JSON, objdump, tools) read the registry; nobody prints fields by hand.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace infsim::sim {

struct Counter {
  std::string path;  // component, e.g. "core0.tensor"
  std::string name;  // e.g. "busy_cycles"
  std::string unit;
  std::string description;
  uint64_t value = 0;
};

class CounterRegistry {
 public:
  // The returned reference stays valid for the registry's lifetime.
  uint64_t& add(const std::string& path, const std::string& name, const std::string& unit,
                const std::string& description) {
    counters_.push_back({path, name, unit, description, 0});
    return counters_.back().value;
  }
  void reset() {
    for (auto& c : counters_) c.value = 0;
  }
  const std::deque<Counter>& all() const { return counters_; }

 private:
  std::deque<Counter> counters_;
};

}  // namespace infsim::sim

#include "sim/system/instance_config.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "sim/config_file.h"

namespace infsim::sim {

namespace {
std::string instance_dir() { return config_dir() + "/instances"; }
}  // namespace

const std::vector<ParamInfo>& instance_param_schema() {
  static const std::vector<ParamInfo> schema = [] {
    std::vector<ParamInfo> s;
#define INFSIM_SCHEMA(type, name, def, unit, desc) s.push_back({#name, #type, unit, desc, text_of<type>(def)});
    INFSIM_INSTANCE_PARAMS(INFSIM_SCHEMA)
#undef INFSIM_SCHEMA
    return s;
  }();
  return schema;
}

std::vector<std::pair<std::string, std::string>> param_values(const InstanceConfig& c) {
  std::vector<std::pair<std::string, std::string>> v;
#define INFSIM_VALUE(type, name, def, unit, desc) v.emplace_back(#name, text_of(c.name));
  INFSIM_INSTANCE_PARAMS(INFSIM_VALUE)
#undef INFSIM_VALUE
  return v;
}

InstanceConfig InstanceConfig::from_file(const std::string& path) {
  std::set<std::string> known;
#define INFSIM_KNOWN(type, name, def, unit, desc) known.insert(#name);
  INFSIM_INSTANCE_PARAMS(INFSIM_KNOWN)
#undef INFSIM_KNOWN
  const YAML::Node root = read_config_file(path, known, "instance file");
  InstanceConfig c;
#define INFSIM_READ(type, name, def, unit, desc) \
  if (root[#name]) c.name = parse_value<type>(root[#name], #name, path);
  INFSIM_INSTANCE_PARAMS(INFSIM_READ)
#undef INFSIM_READ
  try {
    c.check();
  } catch (const ConfigError& e) {
    throw ConfigError(path + ": " + e.what());
  }
  return c;
}

InstanceConfig InstanceConfig::named(const std::string& name_or_path) {
  if (name_or_path.find('/') == std::string::npos && name_or_path.find(".yaml") == std::string::npos) {
    const std::string path = instance_dir() + "/" + name_or_path + ".yaml";
    if (!std::filesystem::exists(path)) {
      std::string known;
      for (const auto& n : bundled()) known += (known.empty() ? "" : ", ") + n;
      throw ConfigError(fmt::format("unknown instance '{}' (choose from {}, or give an instance file)", name_or_path, known));
    }
    return from_file(path);
  }
  return from_file(name_or_path);
}

std::vector<std::string> InstanceConfig::bundled() {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(instance_dir(), ec))
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  // inf1.xlarge, inf1.2xlarge, inf1.6xlarge, inf1.24xlarge: by size, then name.
  std::sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
    auto size = [](const std::string& s) {
      const auto dot = s.find('.');
      return dot == std::string::npos ? 0 : std::atoi(s.c_str() + dot + 1);
    };
    return std::make_pair(size(a), a) < std::make_pair(size(b), b);
  });
  return names;
}

void InstanceConfig::check() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw ConfigError(what);
  };
  need(chips >= 1 && chips <= 64, "chips must be 1..64");
  need(topology == "chain" || topology == "ring", "topology must be chain or ring");
  need(vcpus >= 1, "vcpus must be at least 1");
  need(price_per_hour >= 0, "price_per_hour must not be negative");
  need(link_clock_mhz > 0 && host_link_clock_mhz > 0, "link clocks must be positive");
  need(link_bytes_per_cycle >= 1 && host_link_bytes_per_cycle >= 1, "link bytes per cycle must be at least 1");
  need(link_packet_bytes >= 1 && host_link_packet_bytes >= 1, "packet sizes must be at least 1 byte");
  need(link_credits >= 1 && host_link_credits >= 1, "links need at least one credit");
}

std::vector<std::pair<uint32_t, uint32_t>> InstanceConfig::links() const {
  std::vector<std::pair<uint32_t, uint32_t>> l;
  for (uint32_t c = 0; c + 1 < chips; ++c) l.emplace_back(c, c + 1);
  if (topology == "ring" && chips > 2) l.emplace_back(chips - 1, 0);
  return l;
}

uint32_t InstanceConfig::hops(uint32_t from, uint32_t to) const {
  const uint32_t up = to >= from ? to - from : from - to;
  if (topology == "ring" && chips > 2) return std::min(up, chips - up);
  return up;
}

uint32_t InstanceConfig::next_hop(uint32_t from, uint32_t to) const {
  if (from == to) return from;
  if (topology == "ring" && chips > 2) {
    const uint32_t east = (to + chips - from) % chips;  // hops going up (wrapping)
    return east <= chips - east ? (from + 1) % chips : (from + chips - 1) % chips;
  }
  return to > from ? from + 1 : from - 1;
}

}  // namespace infsim::sim

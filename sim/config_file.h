// What the chip and instance configuration readers share: the YAML file of
// parameter: value overrides, unknown keys refused, values parsed with the
// file and key named in the error. (Internal to sim/: the schemas themselves
// are the X-macro lists in sim/config.h and sim/system/instance_config.h.)
#pragma once

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <set>
#include <string>

#include "sim/config.h"

namespace infsim::sim {

// Shortest text that reads back to the same value.
template <typename T>
std::string text_of(const T& v) {
  return fmt::format("{}", v);
}

template <typename T>
T parse_value(const YAML::Node& n, const std::string& key, const std::string& path) {
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    throw ConfigError(fmt::format("{}: parameter '{}' has a bad value '{}'", path, key, n.Scalar()));
  }
}

// The mapping in `path` (`what` names the kind of file in errors); every key must be in `known`.
inline YAML::Node read_config_file(const std::string& path, const std::set<std::string>& known, const char* what) {
  YAML::Node root;
  try {
    root = YAML::LoadFile(path);
  } catch (const YAML::BadFile&) {
    throw ConfigError(fmt::format("cannot open {} {}", what, path));
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}: not valid YAML: {}", path, e.what()));
  }
  if (!root.IsMap()) throw ConfigError(path + ": expected a mapping of parameter: value");
  for (const auto& kv : root) {
    const std::string key = kv.first.as<std::string>();
    if (!known.count(key)) throw ConfigError(fmt::format("{}: unknown parameter '{}'", path, key));
  }
  return root;
}

// configs/, or $INFSIM_CONFIG_DIR.
inline std::string config_dir() {
  if (const char* d = std::getenv("INFSIM_CONFIG_DIR")) return d;
  return INFSIM_DEFAULT_CONFIG_DIR;
}

}  // namespace infsim::sim

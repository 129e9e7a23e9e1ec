#include "isa/isa_support.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace infsim::isa {

void BitWriter::put(uint64_t value, unsigned width) {
  if (width < 64 && (value >> width) != 0)
    throw IsaError(fmt::format("value {} does not fit in {} bits", value, width));
  if (pos_ + width > bits_) throw IsaError("instruction word overflow");
  for (unsigned i = 0; i < width; ++i, ++pos_)
    if ((value >> i) & 1u) word_[pos_ / 8] |= static_cast<uint8_t>(1u << (pos_ % 8));
}

void BitWriter::put_signed(int64_t value, unsigned width) {
  const int64_t lo = -(int64_t{1} << (width - 1)), hi = (int64_t{1} << (width - 1)) - 1;
  if (value < lo || value > hi) throw IsaError(fmt::format("value {} does not fit in signed {} bits", value, width));
  const uint64_t mask = width == 64 ? ~uint64_t{0} : ((uint64_t{1} << width) - 1);
  put(static_cast<uint64_t>(value) & mask, width);
}

uint64_t BitReader::get(unsigned width) {
  if (pos_ + width > bits_) throw IsaError("instruction word underflow");
  uint64_t v = 0;
  for (unsigned i = 0; i < width; ++i, ++pos_)
    if ((word_[pos_ / 8] >> (pos_ % 8)) & 1u) v |= uint64_t{1} << i;
  return v;
}

int64_t BitReader::get_signed(unsigned width) {
  const uint64_t v = get(width);
  if (width < 64 && ((v >> (width - 1)) & 1u)) return static_cast<int64_t>(v | (~uint64_t{0} << width));
  return static_cast<int64_t>(v);
}

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float bits_f32(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// ----------------------------------------------------------------- operand text

std::string format_ap(const AccessPattern& ap) {
  if (ap.space == Space::none) return "none";
  std::string s = fmt::format("{}[{}:{}]@{}:{}[", to_string(ap.space), ap.part_start, ap.part_start + ap.part_count,
                              ap.offset, to_string(ap.dtype));
  for (unsigned i = 0; i < ap.ndim && i < 4; ++i) s += fmt::format("{}{}:{}", i ? "," : "", ap.dims[i].num, ap.dims[i].step);
  return s + "]";
}

namespace {

int64_t parse_int(std::string_view t, const char* what) {
  std::string s(t);
  if (s.empty()) throw IsaError(std::string("missing ") + what);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(s.c_str(), &end, 0);
  if (*end != '\0' || errno != 0) throw IsaError(std::string("bad ") + what + " '" + s + "'");
  return v;
}

// Splits `text` at the first `sep`; throws if absent.
std::pair<std::string_view, std::string_view> split(std::string_view text, char sep, std::string_view whole) {
  const size_t i = text.find(sep);
  if (i == std::string_view::npos)
    throw IsaError("access pattern '" + std::string(whole) + "': expected '" + std::string(1, sep) + "'");
  return {text.substr(0, i), text.substr(i + 1)};
}

}  // namespace

AccessPattern parse_ap(std::string_view text) {
  AccessPattern ap;
  if (text == "none") return ap;
  const std::string_view whole = text;
  auto [space, rest] = split(text, '[', whole);
  if (!parse(space, ap.space) || ap.space == Space::none)
    throw IsaError("access pattern '" + std::string(whole) + "': unknown space '" + std::string(space) + "'");
  auto [p0, rest2] = split(rest, ':', whole);
  auto [p1, rest3] = split(rest2, ']', whole);
  const int64_t ps = parse_int(p0, "partition start"), pe = parse_int(p1, "partition end");
  if (pe < ps) throw IsaError("access pattern '" + std::string(whole) + "': partition end before start");
  ap.part_start = static_cast<uint32_t>(ps);
  ap.part_count = static_cast<uint32_t>(pe - ps);
  if (rest3.empty() || rest3[0] != '@') throw IsaError("access pattern '" + std::string(whole) + "': expected '@'");
  auto [off, rest4] = split(rest3.substr(1), ':', whole);
  ap.offset = static_cast<uint32_t>(parse_int(off, "offset"));
  auto [dt, dims] = split(rest4, '[', whole);
  if (!parse(dt, ap.dtype)) throw IsaError("access pattern '" + std::string(whole) + "': unknown dtype '" + std::string(dt) + "'");
  if (dims.empty() || dims.back() != ']') throw IsaError("access pattern '" + std::string(whole) + "': expected ']'");
  dims.remove_suffix(1);
  while (!dims.empty()) {
    if (ap.ndim == 4) throw IsaError("access pattern '" + std::string(whole) + "': more than 4 free dimensions");
    const size_t comma = dims.find(',');
    const std::string_view d = dims.substr(0, comma);
    auto [num, step] = split(d, ':', whole);
    ap.dims[ap.ndim].num = static_cast<uint32_t>(parse_int(num, "dimension size"));
    ap.dims[ap.ndim].step = static_cast<int32_t>(parse_int(step, "dimension step"));
    ++ap.ndim;
    dims = comma == std::string_view::npos ? std::string_view{} : dims.substr(comma + 1);
  }
  return ap;
}

void append_field(std::string& s, const char* name, uint32_t v) { s += fmt::format(" {}={}", name, v); }
void append_field(std::string& s, const char* name, int32_t v) { s += fmt::format(" {}={}", name, v); }
// fmt prints the shortest text that reads back to the same float.
void append_field(std::string& s, const char* name, float v) { s += fmt::format(" {}={}", name, v); }
void append_field(std::string& s, const char* name, const AccessPattern& v) {
  s += fmt::format(" {}={}", name, format_ap(v));
}

namespace {
std::string sem_text(uint8_t id) { return id == kNoSemaphore ? "none" : fmt::format("s{}", id); }
}  // namespace

void append_header(std::string& s, const Header& h) {
  if (h.wait0 != kNoSemaphore || h.wait0_value) s += fmt::format(" wait0={}>={}", sem_text(h.wait0), h.wait0_value);
  if (h.wait1 != kNoSemaphore || h.wait1_value) s += fmt::format(" wait1={}>={}", sem_text(h.wait1), h.wait1_value);
  if (h.signal != kNoSemaphore) s += fmt::format(" signal={}", sem_text(h.signal));
}

AsmLine::AsmLine(std::string_view line) {
  size_t i = 0;
  auto next = [&]() -> std::string_view {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    const size_t b = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    return line.substr(b, i - b);
  };
  mnemonic_ = std::string(next());
  if (mnemonic_.empty()) throw IsaError("empty instruction");
  for (std::string_view tok = next(); !tok.empty(); tok = next()) {
    const size_t eq = tok.find('=');
    if (eq == std::string_view::npos || eq == 0) throw IsaError("expected key=value, got '" + std::string(tok) + "'");
    std::string key(tok.substr(0, eq));
    if (fields_.count(key)) throw IsaError("field '" + key + "' given twice");
    fields_[key] = std::string(tok.substr(eq + 1));
  }
}

bool AsmLine::find(const char* name, std::string& value, bool optional) {
  auto it = fields_.find(name);
  if (it == fields_.end()) {
    if (optional) return false;
    throw IsaError(mnemonic_ + ": missing field '" + name + "'");
  }
  value = it->second;
  fields_.erase(it);
  return true;
}

void AsmLine::take(const char* name, uint32_t& out, bool optional) {
  std::string v;
  if (!find(name, v, optional)) return;
  const int64_t x = parse_int(v, name);
  if (x < 0 || x > 0xffffffffLL) throw IsaError(std::string("field ") + name + " out of range: " + v);
  out = static_cast<uint32_t>(x);
}
void AsmLine::take(const char* name, int32_t& out, bool optional) {
  std::string v;
  if (!find(name, v, optional)) return;
  const int64_t x = parse_int(v, name);
  if (x < INT32_MIN || x > INT32_MAX) throw IsaError(std::string("field ") + name + " out of range: " + v);
  out = static_cast<int32_t>(x);
}
void AsmLine::take(const char* name, float& out, bool optional) {
  std::string v;
  if (!find(name, v, optional)) return;
  char* end = nullptr;
  out = std::strtof(v.c_str(), &end);
  if (v.empty() || *end != '\0') throw IsaError(std::string("field ") + name + ": bad number '" + v + "'");
}
void AsmLine::take(const char* name, AccessPattern& out, bool optional) {
  std::string v;
  if (!find(name, v, optional)) return;
  try {
    out = parse_ap(v);
  } catch (const IsaError& e) {
    throw IsaError(std::string("field ") + name + ": " + e.what());
  }
}

void AsmLine::take_header(Header& h) {
  auto wait = [&](const char* name, uint8_t& sem, uint32_t& value) {
    std::string v;
    if (!find(name, v, true)) return;
    const size_t ge = v.find(">=");
    if (ge == std::string::npos) throw IsaError(std::string(name) + ": expected sN>=VALUE, got '" + v + "'");
    const std::string id = v.substr(0, ge);
    if (id == "none") {
      sem = kNoSemaphore;
    } else {
      if (id.size() < 2 || id[0] != 's') throw IsaError(std::string(name) + ": bad semaphore '" + id + "'");
      const int64_t n = parse_int(id.substr(1), "semaphore");
      if (n < 0 || n >= kNoSemaphore) throw IsaError(std::string(name) + ": semaphore out of range '" + id + "'");
      sem = static_cast<uint8_t>(n);
    }
    const int64_t x = parse_int(v.substr(ge + 2), "wait value");
    if (x < 0 || x > 0xffffffffLL) throw IsaError(std::string(name) + ": wait value out of range");
    value = static_cast<uint32_t>(x);
  };
  wait("wait0", h.wait0, h.wait0_value);
  wait("wait1", h.wait1, h.wait1_value);
  std::string v;
  if (find("signal", v, true)) {
    if (v == "none") {
      h.signal = kNoSemaphore;
    } else {
      if (v.size() < 2 || v[0] != 's') throw IsaError("signal: bad semaphore '" + v + "'");
      const int64_t n = parse_int(v.substr(1), "semaphore");
      if (n < 0 || n >= kNoSemaphore) throw IsaError("signal: semaphore out of range '" + v + "'");
      h.signal = static_cast<uint8_t>(n);
    }
  }
}

void AsmLine::finish() const {
  if (!fields_.empty()) throw IsaError(mnemonic_ + ": unknown field '" + fields_.begin()->first + "'");
}

}  // namespace infsim::isa

// ISA tests: encoding, decoding, assembly and disassembly of every opcode.
//
// The tests read isa/isa.yaml themselves and build random instructions from
// the table (field kinds and widths), so an opcode or field added to the table
// is covered without touching this file. Each random instruction is checked
// against an independent bit packer written from the table's encoding rules.
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>
#include <fmt/format.h>

#include <array>
#include <cstring>
#include <map>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <variant>
#include <vector>

#include "isa/isa_support.h"
#include "isa_gen.h"

using namespace infsim;
using isa::IsaError;

namespace {

// ------------------------------------------------------------- the ISA table

struct FieldSpec {
  std::string name, kind;
  unsigned bits = 0;
  std::vector<FieldSpec> element;  // array4 only
};

struct InsSpec {
  std::string name;
  unsigned opcode = 0;
  std::vector<std::string> engines;
  std::vector<FieldSpec> fields;
};

struct Table {
  unsigned word_bytes = 0, enum_bits = 0;
  std::map<std::string, std::vector<std::string>> enums;
  std::vector<FieldSpec> ap, header;
  std::vector<InsSpec> instructions;

  const InsSpec* find(const std::string& name) const {
    for (const auto& i : instructions)
      if (i.name == name) return &i;
    return nullptr;
  }
};

unsigned field_bits(const Table& t, const YAML::Node& f);

FieldSpec read_field(const Table& t, const YAML::Node& f) {
  FieldSpec s;
  s.name = f["name"].as<std::string>();
  s.kind = f["kind"].as<std::string>();
  if (s.kind == "array4")
    for (const auto& e : f["element"]) s.element.push_back(read_field(t, e));
  s.bits = field_bits(t, f);
  return s;
}

unsigned ap_bits(const Table& t) {
  unsigned n = 0;
  for (const auto& f : t.ap) n += f.bits;
  return n;
}

// The widths as isa.yaml's comments define them.
unsigned field_bits(const Table& t, const YAML::Node& f) {
  if (f["bits"]) return f["bits"].as<unsigned>();
  const std::string kind = f["kind"].as<std::string>();
  if (kind == "ap") return ap_bits(t);
  if (kind == "sem") return 8;
  if (kind == "f32") return 32;
  if (kind.rfind("enum:", 0) == 0) return t.enum_bits;
  if (kind == "array4") {
    unsigned n = 0;
    for (const auto& e : f["element"]) n += field_bits(t, e);
    return 4 * n;
  }
  std::smatch m;
  if (std::regex_match(kind, m, std::regex("[ui](\\d+)"))) return std::stoul(m[1]);
  ADD_FAILURE() << "unknown field kind " << kind;
  return 0;
}

const Table& table() {
  static const Table t = [] {
    Table t;
    const YAML::Node root = YAML::LoadFile(std::string(INFSIM_SOURCE_DIR) + "/isa/isa.yaml");
    t.word_bytes = root["word_bytes"].as<unsigned>();
    t.enum_bits = root["enum_bits"].as<unsigned>();
    for (const auto& e : root["enums"])
      t.enums[e.first.as<std::string>()] = e.second["values"].as<std::vector<std::string>>();
    for (const auto& f : root["access_pattern"]) t.ap.push_back(read_field(t, f));
    for (const auto& f : root["header"]) t.header.push_back(read_field(t, f));
    for (const auto& i : root["instructions"]) {
      InsSpec s;
      s.name = i["name"].as<std::string>();
      s.opcode = i["opcode"].as<unsigned>();
      s.engines = i["engines"].as<std::vector<std::string>>();
      for (const auto& f : i["fields"]) s.fields.push_back(read_field(t, f));
      t.instructions.push_back(std::move(s));
    }
    return t;
  }();
  return t;
}

// ----------------------------------------------- independent reference packer

// Packs values LSB-first, as isa.yaml specifies, and remembers where every
// enum field lies so tests can corrupt it.
struct EnumSlot {
  unsigned pos, width, count;
  std::string what;
};

class RefPacker {
 public:
  explicit RefPacker(unsigned bytes) : word(bytes, 0) {}
  void put(uint64_t v, unsigned width) {
    ASSERT_LE(pos + width, word.size() * 8) << "reference packing overflows the word";
    for (unsigned i = 0; i < width; ++i, ++pos)
      if ((v >> i) & 1u) word[pos / 8] |= static_cast<uint8_t>(1u << (pos % 8));
  }
  void put_enum(uint64_t v, unsigned width, unsigned count, const std::string& what) {
    enums.push_back({pos, width, count, what});
    put(v, width);
  }
  std::vector<uint8_t> word;
  unsigned pos = 0;
  std::vector<EnumSlot> enums;
};

// ------------------------------------------------------ random instructions

class Gen {
 public:
  explicit Gen(uint64_t seed) : rng_(seed) {}

  uint64_t uniform(uint64_t lo, uint64_t hi) { return std::uniform_int_distribution<uint64_t>(lo, hi)(rng_); }
  bool chance(double p) { return std::bernoulli_distribution(p)(rng_); }

  // Unsigned value of `bits` bits, biased towards the edges.
  uint64_t unsigned_value(unsigned bits) {
    const uint64_t max = bits >= 64 ? ~uint64_t{0} : (uint64_t{1} << bits) - 1;
    const unsigned r = static_cast<unsigned>(uniform(0, 9));
    if (r == 0) return 0;
    if (r == 1) return max;
    if (r == 2) return uniform(0, std::min<uint64_t>(max, 16));
    return uniform(0, max);
  }
  int64_t signed_value(unsigned bits) {
    const int64_t lo = -(int64_t{1} << (bits - 1)), hi = (int64_t{1} << (bits - 1)) - 1;
    const unsigned r = static_cast<unsigned>(uniform(0, 9));
    if (r == 0) return lo;
    if (r == 1) return hi;
    if (r == 2) return 0;
    if (r == 3) return static_cast<int64_t>(uniform(0, 32)) - 16;
    return lo + static_cast<int64_t>(uniform(0, static_cast<uint64_t>(hi - lo)));
  }
  float float_value() {
    static const float special[] = {0.0f,    -0.0f,   1.0f, -1.0f, 0.5f, 1e-45f, -1e-45f, 1.17549435e-38f, 3.4028235e38f,
                                    -3.4028235e38f, 0.1f, 1.0f / 3.0f, INFINITY, -INFINITY};
    if (chance(0.3)) return special[uniform(0, std::size(special) - 1)];
    for (;;) {
      const uint32_t u = static_cast<uint32_t>(uniform(0, 0xffffffffu));
      float f;
      std::memcpy(&f, &u, 4);
      if (f == f) return f;  // NaN has no equality: not a round-trip value
    }
  }
  uint8_t semaphore() { return static_cast<uint8_t>(uniform(0, isa::kNoSemaphore - 1)); }

 private:
  std::mt19937_64 rng_;
};

unsigned enum_index(const Table& t, const std::string& en, const std::string& value) {
  const auto& v = t.enums.at(en);
  return static_cast<unsigned>(std::find(v.begin(), v.end(), value) - v.begin());
}

// One random instruction: its canonical text (what disassemble() must print)
// and its encoding per the table.
struct Sample {
  std::string text;
  RefPacker pack{table().word_bytes};
};

// Random access pattern; absent with some probability. Returns its text and
// packs it.
std::string random_ap(Gen& g, RefPacker& p, bool absent) {
  const Table& t = table();
  std::map<std::string, uint64_t> v;
  std::vector<std::pair<uint64_t, int64_t>> dims(4, {1, 0});  // canonical unused dims {1, 0}
  const auto& spaces = t.enums.at("space");
  const unsigned none = enum_index(t, "space", "none");
  const auto bits_of = [&](const std::string& name) {
    for (const auto& f : t.ap)
      if (f.name == name) return f.bits;
    ADD_FAILURE() << "access pattern field " << name << " not in isa.yaml";
    return 0u;
  };
  const FieldSpec* dims_spec = nullptr;
  for (const auto& f : t.ap)
    if (f.kind == "array4") dims_spec = &f;
  EXPECT_NE(dims_spec, nullptr);
  std::string text = "none";
  if (absent) {
    v = {{"space", none}, {"dtype", 0}, {"part_start", 0}, {"part_count", 0}, {"offset", 0}, {"ndim", 0}};
  } else {
    unsigned space;
    do space = static_cast<unsigned>(g.uniform(0, spaces.size() - 1));
    while (space == none);
    v["space"] = space;
    v["dtype"] = g.uniform(0, t.enums.at("dtype").size() - 1);
    v["part_start"] = g.unsigned_value(bits_of("part_start"));
    v["part_count"] = g.unsigned_value(bits_of("part_count"));
    v["offset"] = g.unsigned_value(bits_of("offset"));
    v["ndim"] = g.uniform(0, 4);
    for (unsigned i = 0; i < v["ndim"]; ++i)
      dims[i] = {g.unsigned_value(dims_spec->element[0].bits), g.signed_value(dims_spec->element[1].bits)};
    text = fmt::format("{}[{}:{}]@{}:{}[", spaces[space], v["part_start"], v["part_start"] + v["part_count"],
                       v["offset"], t.enums.at("dtype")[v["dtype"]]);
    for (unsigned i = 0; i < v["ndim"]; ++i) text += fmt::format("{}{}:{}", i ? "," : "", dims[i].first, dims[i].second);
    text += "]";
  }
  for (const auto& f : t.ap) {
    if (f.kind == "array4") {
      for (const auto& [num, step] : dims) {
        p.put(num, f.element[0].bits);
        p.put(static_cast<uint64_t>(step) & ((uint64_t{1} << f.element[1].bits) - 1), f.element[1].bits);
      }
    } else if (f.kind.rfind("enum:", 0) == 0) {
      p.put_enum(v.at(f.name), f.bits, static_cast<unsigned>(t.enums.at(f.kind.substr(5)).size()), "ap." + f.name);
    } else {
      p.put(v.at(f.name), f.bits);
    }
  }
  return text;
}

Sample random_instruction(Gen& g, const InsSpec& ins) {
  const Table& t = table();
  Sample s;
  // Header values first (they are packed first but printed last).
  std::map<std::string, uint64_t> h;
  std::string htext;
  for (const char* w : {"wait0", "wait1"}) {
    const std::string value = std::string(w) + "_value";
    const unsigned r = static_cast<unsigned>(g.uniform(0, 19));
    if (r < 8) {
      h[w] = isa::kNoSemaphore;
      h[value] = 0;
    } else {
      h[w] = r == 8 ? isa::kNoSemaphore : g.semaphore();
      h[value] = g.unsigned_value(32);
      if (h[w] == isa::kNoSemaphore && h[value] == 0) h[value] = 1;
      htext += fmt::format(" {}={}>={}", w, h[w] == isa::kNoSemaphore ? "none" : fmt::format("s{}", h[w]), h[value]);
    }
  }
  h["signal"] = g.chance(0.5) ? isa::kNoSemaphore : g.semaphore();
  if (h["signal"] != isa::kNoSemaphore) htext += fmt::format(" signal=s{}", h["signal"]);
  h["opcode"] = ins.opcode;
  for (const auto& f : t.header) {
    EXPECT_TRUE(h.count(f.name)) << "header field " << f.name << " unknown to this test";
    s.pack.put(h[f.name], f.bits);
  }

  s.text = ins.name;
  for (const auto& f : ins.fields) {
    std::string value;
    const std::string& k = f.kind;
    if (k == "ap") {
      value = random_ap(g, s.pack, g.chance(0.2));
    } else if (k == "f32") {
      const float x = g.float_value();
      uint32_t u;
      std::memcpy(&u, &x, 4);
      s.pack.put(u, 32);
      value = fmt::format("{}", x);
    } else if (k.rfind("enum:", 0) == 0) {
      const auto& vals = t.enums.at(k.substr(5));
      const unsigned i = static_cast<unsigned>(g.uniform(0, vals.size() - 1));
      s.pack.put_enum(i, f.bits, static_cast<unsigned>(vals.size()), ins.name + "." + f.name);
      value = vals[i];
    } else if (k[0] == 'u') {
      const uint64_t x = g.unsigned_value(f.bits);
      s.pack.put(x, f.bits);
      value = std::to_string(x);
    } else if (k[0] == 'i') {
      const int64_t x = g.signed_value(f.bits);
      s.pack.put(static_cast<uint64_t>(x) & ((uint64_t{1} << f.bits) - 1), f.bits);
      value = std::to_string(x);
    } else {
      ADD_FAILURE() << ins.name << "." << f.name << ": field kind " << k << " not supported by this test";
    }
    s.text += " " + f.name + "=" + value;
  }
  s.text += htext;
  return s;
}

std::vector<uint8_t> encoded(const isa::Instruction& ins) {
  std::vector<uint8_t> w(isa::kWordBytes, 0xa5);  // encode must clear every byte
  isa::encode(ins, w.data());
  return w;
}

// --------------------------------------------------- per-opcode typed tests

template <typename V>
struct ToTypes;
template <typename... Ts>
struct ToTypes<std::variant<Ts...>> {
  using type = ::testing::Types<Ts...>;
};
using AllInstructions = ToTypes<isa::Instruction>::type;

struct OpcodeName {
  template <typename T>
  static std::string GetName(int) {
    return isa::to_string(T::kOpcode);
  }
};

template <typename T>
class EveryOpcode : public ::testing::Test {
 protected:
  const InsSpec& spec() {
    const InsSpec* s = table().find(isa::to_string(T::kOpcode));
    if (!s) throw std::runtime_error("opcode not in isa.yaml");
    return *s;
  }
};
TYPED_TEST_SUITE(EveryOpcode, AllInstructions, OpcodeName);

constexpr int kSamples = 3000;

TYPED_TEST(EveryOpcode, MatchesTable) {
  const InsSpec& s = this->spec();
  EXPECT_EQ(static_cast<unsigned>(TypeParam::kOpcode), s.opcode);
  isa::Opcode parsed;
  ASSERT_TRUE(isa::parse(s.name, parsed));
  EXPECT_EQ(parsed, TypeParam::kOpcode);
  const auto& engines = table().enums.at("engine");
  for (unsigned e = 0; e < isa::kNumEngine; ++e) {
    const bool listed = std::find(s.engines.begin(), s.engines.end(), engines[e]) != s.engines.end();
    EXPECT_EQ(isa::engine_allowed(TypeParam::kOpcode, static_cast<isa::Engine>(e)), listed) << engines[e];
  }
}

TYPED_TEST(EveryOpcode, RandomInstancesRoundTrip) {
  const InsSpec& spec = this->spec();
  Gen g(0x15a0000 + spec.opcode);
  for (int n = 0; n < kSamples; ++n) {
    const Sample s = random_instruction(g, spec);
    SCOPED_TRACE(s.text);
    isa::Instruction x;
    ASSERT_NO_THROW(x = isa::assemble(s.text));
    ASSERT_TRUE(std::holds_alternative<TypeParam>(x));
    EXPECT_EQ(isa::opcode_of(x), TypeParam::kOpcode);
    // The assembler took every value: the canonical text comes back.
    ASSERT_EQ(isa::disassemble(x), s.text);
    // Encoding follows the table bit for bit.
    const auto word = encoded(x);
    ASSERT_EQ(word, s.pack.word) << "encoding differs from the isa.yaml layout";
    // decode(encode(x)) == x
    const isa::Instruction d = isa::decode(word.data());
    ASSERT_TRUE(std::holds_alternative<TypeParam>(d));
    ASSERT_TRUE(std::get<TypeParam>(d) == std::get<TypeParam>(x));
    // assemble(disassemble(x)) == x, with identical bytes.
    const isa::Instruction a = isa::assemble(isa::disassemble(d));
    ASSERT_TRUE(std::holds_alternative<TypeParam>(a));
    ASSERT_TRUE(std::get<TypeParam>(a) == std::get<TypeParam>(x));
    ASSERT_EQ(encoded(a), word);
  }
}

TYPED_TEST(EveryOpcode, DefaultInstanceRoundTrips) {
  // Default-constructed structs: absent APs (space none), zero values.
  const isa::Instruction x = TypeParam{};
  const auto word = encoded(x);
  EXPECT_EQ(word[0], static_cast<uint8_t>(TypeParam::kOpcode));
  const isa::Instruction d = isa::decode(word.data());
  ASSERT_TRUE(std::holds_alternative<TypeParam>(d));
  EXPECT_TRUE(std::get<TypeParam>(d) == std::get<TypeParam>(x));
  const isa::Instruction a = isa::assemble(isa::disassemble(x));
  EXPECT_TRUE(std::get<TypeParam>(a) == std::get<TypeParam>(x));
}

TYPED_TEST(EveryOpcode, OptionalOperandsMayBeOmitted) {
  // An absent AP may be written `name=none` or left out altogether.
  const InsSpec& spec = this->spec();
  Gen g(0x0a17 + spec.opcode);
  for (int n = 0; n < 50; ++n) {
    const Sample s = random_instruction(g, spec);
    std::string stripped;
    std::istringstream in(s.text);
    for (std::string tok; in >> tok;)
      if (tok.size() < 5 || tok.compare(tok.size() - 5, 5, "=none") != 0) stripped += (stripped.empty() ? "" : " ") + tok;
    // Header semaphores written as none>=V stay.
    if (stripped == s.text) continue;
    SCOPED_TRACE(s.text + "  vs  " + stripped);
    const isa::Instruction a = isa::assemble(s.text), b = isa::assemble(stripped);
    EXPECT_TRUE(std::get<TypeParam>(a) == std::get<TypeParam>(b));
  }
}

TYPED_TEST(EveryOpcode, DecodeRejectsInvalidEnumValues) {
  const InsSpec& spec = this->spec();
  Gen g(0xe0e0 + spec.opcode);
  int checked = 0;
  for (int n = 0; n < 20; ++n) {
    const Sample s = random_instruction(g, spec);
    ASSERT_NO_THROW(isa::decode(s.pack.word.data())) << s.text;
    for (const EnumSlot& e : s.pack.enums) {
      for (uint64_t bad : {uint64_t{e.count}, (uint64_t{1} << e.width) - 1}) {
        if (bad < e.count) continue;
        std::vector<uint8_t> w = s.pack.word;
        for (unsigned i = 0; i < e.width; ++i) {
          const unsigned p = e.pos + i;
          w[p / 8] = static_cast<uint8_t>((w[p / 8] & ~(1u << (p % 8))) | (((bad >> i) & 1u) << (p % 8)));
        }
        EXPECT_THROW(isa::decode(w.data()), IsaError) << e.what << " = " << bad << " in " << s.text;
        ++checked;
      }
    }
  }
  // Every enum field of the opcode was exercised (absent APs still carry enums).
  unsigned enum_fields = 0;
  for (const auto& f : spec.fields) {
    if (f.kind.rfind("enum:", 0) == 0) ++enum_fields;
    if (f.kind == "ap")
      for (const auto& a : table().ap) enum_fields += a.kind.rfind("enum:", 0) == 0;
  }
  if (enum_fields) {
    EXPECT_GT(checked, 0);
  }
}

TYPED_TEST(EveryOpcode, DecodedOpcodeIsItsOwn) {
  // No two opcodes collide: an encoded X decodes as X, whatever its fields.
  const InsSpec& spec = this->spec();
  Gen g(0xc0 + spec.opcode);
  for (int n = 0; n < 200; ++n) {
    const Sample s = random_instruction(g, spec);
    const isa::Instruction d = isa::decode(s.pack.word.data());
    EXPECT_EQ(d.index(), isa::Instruction(TypeParam{}).index());
    EXPECT_EQ(isa::opcode_of(d), TypeParam::kOpcode);
  }
}

// ------------------------------------------------------------ whole-ISA tests

template <size_t... I>
std::vector<unsigned> opcode_numbers(std::index_sequence<I...>) {
  return {static_cast<unsigned>(std::variant_alternative_t<I, isa::Instruction>::kOpcode)...};
}
std::vector<unsigned> all_opcodes() {
  return opcode_numbers(std::make_index_sequence<std::variant_size_v<isa::Instruction>>{});
}

TEST(Isa, OpcodeNumbersAreDistinctAndMatchTheTable) {
  const auto ops = all_opcodes();
  EXPECT_EQ(ops.size(), isa::kNumOpcodes);
  EXPECT_EQ(std::set<unsigned>(ops.begin(), ops.end()).size(), ops.size());
  ASSERT_EQ(table().instructions.size(), ops.size()) << "every isa.yaml instruction is an Instruction alternative";
  std::set<std::string> names;
  for (unsigned op : ops) names.insert(isa::to_string(static_cast<isa::Opcode>(op)));
  for (const auto& i : table().instructions) EXPECT_TRUE(names.count(i.name)) << i.name;
  EXPECT_EQ(isa::kWordBytes, table().word_bytes);
}

TEST(Isa, EveryInstructionFitsTheWord) {
  const Table& t = table();
  unsigned header = 0;
  for (const auto& f : t.header) header += f.bits;
  for (const auto& i : t.instructions) {
    unsigned bits = header;
    for (const auto& f : i.fields) bits += f.bits;
    EXPECT_LE(bits, 8 * t.word_bytes) << i.name;
  }
}

TEST(Isa, DecodeRejectsUnknownOpcodes) {
  const auto ops = all_opcodes();
  const std::set<unsigned> used(ops.begin(), ops.end());
  std::mt19937 rng(7);
  int rejected = 0;
  for (unsigned b = 0; b < 256; ++b) {
    if (used.count(b)) continue;
    std::vector<uint8_t> w(isa::kWordBytes, 0);
    w[0] = static_cast<uint8_t>(b);
    EXPECT_THROW(isa::decode(w.data()), IsaError) << "opcode byte " << b;
    for (auto& x : w) x = static_cast<uint8_t>(rng());
    w[0] = static_cast<uint8_t>(b);
    try {
      isa::decode(w.data());
      ADD_FAILURE() << "opcode byte " << b << " accepted";
    } catch (const IsaError& e) {
      EXPECT_NE(std::string(e.what()).find("opcode"), std::string::npos) << e.what();
    }
    ++rejected;
  }
  EXPECT_EQ(rejected, 256 - static_cast<int>(used.size()));
}

TEST(Isa, DecodeOfRandomWordsNeverCrashes) {
  // Any word either decodes to an instruction that re-encodes to the same
  // fields, or is rejected with IsaError.
  std::mt19937_64 rng(99);
  const auto ops = all_opcodes();
  int ok = 0;
  for (int n = 0; n < 20000; ++n) {
    std::vector<uint8_t> w(isa::kWordBytes);
    for (auto& x : w) x = static_cast<uint8_t>(rng());
    w[0] = static_cast<uint8_t>(ops[rng() % ops.size()]);
    try {
      const isa::Instruction d = isa::decode(w.data());
      const auto again = encoded(d);
      const isa::Instruction d2 = isa::decode(again.data());
      EXPECT_EQ(encoded(d2), again);
      ++ok;
    } catch (const IsaError&) {
    }
  }
  EXPECT_GT(ok, 0);
}

void expect_asm_error(const std::string& line, const std::string& fragment = "") {
  try {
    isa::assemble(line);
    ADD_FAILURE() << "accepted: " << line;
  } catch (const IsaError& e) {
    if (!fragment.empty()) {
      EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << line << " -> " << e.what();
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << line << ": wrong exception type: " << e.what();
  }
}

TEST(Assembler, RejectsUnknownMnemonic) {
  expect_asm_error("frobnicate code=1", "frobnicate");
  expect_asm_error("NOP", "NOP");
  expect_asm_error("", "empty");
  expect_asm_error("   \t ", "empty");
}

TEST(Assembler, RejectsUnknownField) {
  expect_asm_error("nop code=1", "code");
  expect_asm_error("end_of_program code=1 bogus=2", "bogus");
  expect_asm_error("dma_copy desc=0 count=1 wait2=s0>=1", "wait2");
}

TEST(Assembler, RejectsMissingField) {
  expect_asm_error("end_of_program", "code");
  expect_asm_error("dma_copy desc=0", "count");
  expect_asm_error("multiply_moving src=sbuf[0:1]@0:bf16[4:1] dst=psum[0:1]@0:fp32[4:1]", "accumulate");
  expect_asm_error("activation src=none dst=none scale=1", "func");
}

TEST(Assembler, RejectsMalformedTokens) {
  expect_asm_error("end_of_program code=1 code=2", "twice");
  expect_asm_error("end_of_program code", "key=value");
  expect_asm_error("end_of_program =1", "key=value");
  expect_asm_error("end_of_program code=", "code");
  expect_asm_error("end_of_program code=abc", "code");
  expect_asm_error("end_of_program code=12x", "code");
  expect_asm_error("end_of_program code=-1", "out of range");
  expect_asm_error("end_of_program code=4294967296", "out of range");
  expect_asm_error("end_of_program code=99999999999999999999999", "code");
  expect_asm_error("activation func=frobnicate src=none dst=none scale=1", "frobnicate");
  expect_asm_error("tensor_tensor op=pow in0=none in1=none dst=none", "pow");
  expect_asm_error("activation func=relu src=none dst=none scale=one", "scale");
  expect_asm_error("activation func=relu src=none dst=none scale=", "scale");
}

TEST(Assembler, RejectsBadAccessPatterns) {
  expect_asm_error("load_stationary src=dram[0:1]@0:fp32[4:1]", "space");
  expect_asm_error("load_stationary src=none[0:1]@0:fp32[4:1]", "space");
  expect_asm_error("load_stationary src=sbuf[0:1]@0:fp64[4:1]", "fp64");
  expect_asm_error("load_stationary src=sbuf[0:1]0:fp32[4:1]", "@");
  expect_asm_error("load_stationary src=sbuf[4:2]@0:fp32[4:1]", "before");
  expect_asm_error("load_stationary src=sbuf[0:1]@0:fp32[4:1", "]");
  expect_asm_error("load_stationary src=sbuf[0:1]@0:fp32[4]", ":");
  expect_asm_error("load_stationary src=sbuf[0:1]@0:fp32[1:1,1:1,1:1,1:1,1:1]", "4");
  expect_asm_error("load_stationary src=sbuf[a:1]@0:fp32[4:1]", "partition");
  expect_asm_error("load_stationary src=sbuf", "src");
}

TEST(Assembler, RejectsBadSemaphores) {
  expect_asm_error("nop wait0=s1", ">=");
  expect_asm_error("nop wait0=x1>=1", "semaphore");
  expect_asm_error("nop wait0=s>=1", "semaphore");
  expect_asm_error("nop wait0=s255>=1", "out of range");
  expect_asm_error("nop wait1=s-1>=1", "out of range");
  expect_asm_error("nop wait0=s1>=-1", "out of range");
  expect_asm_error("nop wait0=s1>=4294967296", "out of range");
  expect_asm_error("nop wait0=s1>=", "wait value");
  expect_asm_error("nop signal=s255", "out of range");
  expect_asm_error("nop signal=s1000", "out of range");
  expect_asm_error("nop signal=q1", "semaphore");
  expect_asm_error("nop signal=s", "semaphore");
  expect_asm_error("nop signal=sx", "semaphore");
}

TEST(Assembler, AcceptsEdgeValues) {
  EXPECT_NO_THROW(isa::assemble("nop wait0=s254>=4294967295 wait1=s0>=0 signal=s254"));
  EXPECT_NO_THROW(isa::assemble("nop\twait0=none>=0   signal=none"));
  const auto x = isa::assemble("end_of_program code=0x10");
  EXPECT_EQ(std::get<isa::EndOfProgram>(x).code, 16u);
}

// Assembles (if it can) and encodes; the value must be refused by one of them.
void expect_encode_error(const std::string& line) {
  try {
    const isa::Instruction x = isa::assemble(line);
    std::array<uint8_t, isa::kWordBytes> w;
    isa::encode(x, w.data());
    ADD_FAILURE() << "encoded: " << line;
  } catch (const IsaError&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << line << ": wrong exception type: " << e.what();
  }
}

TEST(Encoder, RejectsOutOfRangeValues) {
  expect_encode_error("multiply_moving src=sbuf[0:1]@0:bf16[4:1] dst=psum[0:1]@0:fp32[4:1] accumulate=2");
  expect_encode_error("load_stationary src=sbuf[0:300]@0:bf16[4:1]");     // part_count 300 > u8
  expect_encode_error("load_stationary src=sbuf[256:257]@0:bf16[4:1]");   // part_start 256 > u8
  expect_encode_error("load_stationary src=sbuf[0:1]@16777216:bf16[4:1]");  // offset > u24
  expect_encode_error("load_stationary src=sbuf[0:1]@0:bf16[65536:1]");   // dim num > u16
  expect_encode_error("load_stationary src=sbuf[0:1]@0:bf16[4:8388608]");  // step > i24
  expect_encode_error("load_stationary src=sbuf[0:1]@0:bf16[4:-8388609]");
  expect_encode_error("dma_copy desc=0 count=65536");                        // u16
  // The same through the typed structs.
  isa::MultiplyMoving mm;
  mm.accumulate = 2;
  std::array<uint8_t, isa::kWordBytes> w;
  EXPECT_THROW(isa::encode(mm, w.data()), IsaError);
  isa::LoadStationary ls;
  ls.src.space = isa::Space::sbuf;
  ls.src.part_count = 300;
  EXPECT_THROW(isa::encode(ls, w.data()), IsaError);
  // The edges themselves encode.
  EXPECT_NO_THROW(isa::encode(isa::assemble("load_stationary src=sbuf[255:510]@16777215:bf16[65535:8388607,0:-8388608]"),
                              w.data()));
}

}  // namespace

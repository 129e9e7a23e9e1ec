// Hand-written support for the generated ISA code (isa_gen.cpp): bit packing,
// operand text formatting and parsing. Nothing here knows a specific opcode.
#pragma once

#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>

#include "isa_gen.h"

namespace infsim::isa {

// Malformed instruction word or assembly text.
struct IsaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Packs fields LSB-first into a fixed-size little-endian word.
class BitWriter {
 public:
  BitWriter(uint8_t* word, unsigned bytes) : word_(word), bits_(bytes * 8) {}
  // Throws IsaError when the value does not fit the field.
  void put(uint64_t value, unsigned width);
  void put_signed(int64_t value, unsigned width);

 private:
  uint8_t* word_;
  unsigned bits_;
  unsigned pos_ = 0;
};

class BitReader {
 public:
  BitReader(const uint8_t* word, unsigned bytes) : word_(word), bits_(bytes * 8) {}
  uint64_t get(unsigned width);
  int64_t get_signed(unsigned width);

 private:
  const uint8_t* word_;
  unsigned bits_;
  unsigned pos_ = 0;
};

uint32_t f32_bits(float f);
float bits_f32(uint32_t u);

template <typename E>
E check_enum(uint64_t raw, unsigned count, const char* what) {
  if (raw >= count) throw IsaError(std::string("invalid ") + what + " value " + std::to_string(raw));
  return static_cast<E>(raw);
}

void put_ap(BitWriter& bw, const AccessPattern& ap);
AccessPattern get_ap(BitReader& br);

// Text form of operands, shared by the disassembler and the assembler.
std::string format_ap(const AccessPattern& ap);
AccessPattern parse_ap(std::string_view text);

void append_field(std::string& s, const char* name, uint32_t v);
void append_field(std::string& s, const char* name, int32_t v);
void append_field(std::string& s, const char* name, float v);
void append_field(std::string& s, const char* name, const AccessPattern& v);
template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
void append_field(std::string& s, const char* name, E v) {
  s += ' ';
  s += name;
  s += '=';
  s += to_string(v);
}
void append_header(std::string& s, const Header& h);

// One line of assembly: `mnemonic key=value ...`. Fields are taken by name;
// finish() rejects any that were not taken.
class AsmLine {
 public:
  explicit AsmLine(std::string_view line);
  std::string_view mnemonic() const { return mnemonic_; }
  void take(const char* name, uint32_t& out, bool optional);
  void take(const char* name, int32_t& out, bool optional);
  void take(const char* name, float& out, bool optional);
  void take(const char* name, AccessPattern& out, bool optional);
  template <typename E, typename = std::enable_if_t<std::is_enum_v<E>>>
  void take(const char* name, E& out, bool optional) {
    std::string v;
    if (!find(name, v, optional)) return;
    if (!parse(v, out)) throw IsaError("field " + std::string(name) + ": unknown value '" + v + "'");
  }
  void take_header(Header& h);
  void finish() const;

 private:
  bool find(const char* name, std::string& value, bool optional);
  std::string mnemonic_;
  std::map<std::string, std::string> fields_;
};

}  // namespace infsim::isa

// Executable container tests: serialization round trip, rejection of every
// truncated or corrupted file, and validate() against the inf1 limits.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "isa/executable.h"
#include "isa/isa_support.h"
#include "sim/config.h"
#include "tests/cpp/dma_endpoints.h"

using namespace infsim;
using isa::FormatError;

namespace {

using test::dram_ep;
using test::onchip_ep;

isa::Stream stream(isa::Engine e, const std::vector<std::string>& lines, uint32_t source = 0) {
  isa::Stream s;
  s.engine = e;
  for (const auto& l : lines) {
    s.instructions.push_back(isa::assemble(l));
    s.source_op.push_back(source);
  }
  return s;
}

// A small, valid program touching every section and several instruction kinds.
isa::Executable sample() {
  isa::Executable exe;
  exe.metadata_json = R"({"compiler": "test", "target": "inf1"})";
  exe.num_cores = 1;
  exe.tensors.push_back({"x", isa::TensorKind::input, isa::Dtype::fp32, {16, 8}, 0, 0});
  exe.tensors.push_back({"y", isa::TensorKind::output, isa::Dtype::bf16, {2, 3, 4}, 0, 4096});
  isa::Constant c;
  c.dram_offset = 8192;
  for (int i = 0; i < 100; ++i) c.bytes.push_back(static_cast<uint8_t>(i * 7));
  exe.constants.push_back(c);
  // 0: x [16, 8] fp32 -> sbuf [16 partitions, 8] bf16
  exe.dma.push_back({dram_ep(0, isa::Dtype::fp32, 16, 8, {{8, 1}}),
                     onchip_ep(isa::Location::sbuf, 0, 16, 0, isa::Dtype::bf16, {{8, 1}})});
  // 1: constants -> sbuf [16, 4] fp32 (transposed 2-dim)
  exe.dma.push_back({dram_ep(8192, isa::Dtype::int8, 1, 0, {{4, 1}, {16, 4}}),
                     onchip_ep(isa::Location::sbuf, 16, 4, 256, isa::Dtype::fp32, {{16, 1}})});
  // 2: psum [4 partitions, 8] -> y (24 of the 32 elements)
  exe.dma.push_back({onchip_ep(isa::Location::psum, 0, 3, 0, isa::Dtype::fp32, {{2, 4}, {4, 1}}),
                     dram_ep(4096, isa::Dtype::bf16, 2, 12, {{3, 4}, {4, 1}})});
  exe.streams.push_back(stream(isa::Engine::dma0, {"dma_copy desc=0 count=2 signal=s0",
                                                  "nop wait0=s1>=1",
                                                  "dma_copy desc=2 count=1 wait0=s2>=1 signal=s3",
                                                  "end_of_program code=7 wait0=s3>=1"},
                               0));
  exe.streams.push_back(stream(isa::Engine::tensor,
                               {"load_stationary src=sbuf[0:16]@0:bf16[4:1] wait0=s0>=1",
                                "multiply_moving src=sbuf[0:16]@0:bf16[8:1] dst=psum[0:4]@0:fp32[8:1] accumulate=0 "
                                "signal=s1"},
                               1));
  exe.streams.push_back(stream(isa::Engine::scalar,
                               {"activation func=relu src=psum[0:4]@0:fp32[8:1] dst=sbuf[0:4]@1024:bf16[8:1] "
                                "bias=sbuf[32:36]@256:fp32[1:1] scale=0.5 wait0=s1>=1 signal=s4"},
                               2));
  exe.streams.push_back(stream(isa::Engine::vector,
                               {"tensor_tensor op=max in0=sbuf[0:4]@1024:bf16[2:4,4:1] in1=psum[0:4]@0:fp32[8:1] "
                                "dst=psum[0:4]@0:fp32[8:1] wait0=s4>=1 signal=s2"},
                               2));
  exe.source_ops = {"<io>", "matmul", "relu"};
  return exe;
}

void expect_same(const isa::Executable& a, const isa::Executable& b) {
  EXPECT_EQ(a.metadata_json, b.metadata_json);
  EXPECT_EQ(a.num_cores, b.num_cores);
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].name, b.tensors[i].name);
    EXPECT_EQ(a.tensors[i].kind, b.tensors[i].kind);
    EXPECT_EQ(a.tensors[i].dtype, b.tensors[i].dtype);
    EXPECT_EQ(a.tensors[i].shape, b.tensors[i].shape);
    EXPECT_EQ(a.tensors[i].core, b.tensors[i].core);
    EXPECT_EQ(a.tensors[i].dram_offset, b.tensors[i].dram_offset);
  }
  ASSERT_EQ(a.constants.size(), b.constants.size());
  for (size_t i = 0; i < a.constants.size(); ++i) {
    EXPECT_EQ(a.constants[i].core, b.constants[i].core);
    EXPECT_EQ(a.constants[i].dram_offset, b.constants[i].dram_offset);
    EXPECT_EQ(a.constants[i].bytes, b.constants[i].bytes);
  }
  EXPECT_TRUE(a.dma == b.dma);
  ASSERT_EQ(a.streams.size(), b.streams.size());
  for (size_t i = 0; i < a.streams.size(); ++i) {
    EXPECT_EQ(a.streams[i].core, b.streams[i].core);
    EXPECT_EQ(a.streams[i].engine, b.streams[i].engine);
    EXPECT_TRUE(a.streams[i].instructions == b.streams[i].instructions);
    EXPECT_EQ(a.streams[i].source_op, b.streams[i].source_op);
  }
  EXPECT_EQ(a.source_ops, b.source_ops);
}

const isa::DeviceLimits& inf1() {
  static const isa::DeviceLimits l = sim::ChipConfig::named("inf1").limits();
  return l;
}

// Recomputes the size and content hash after an edit, so the parser proper sees it.
void reseal(std::vector<uint8_t>& b) {
  const uint64_t size = b.size();
  std::memcpy(b.data() + 16, &size, 8);
  const uint64_t h = isa::fnv1a64(b.data() + 40, b.size() - 40);
  std::memcpy(b.data() + 24, &h, 8);
}

// Deserializes; any failure must be a FormatError. Returns whether it was accepted.
bool accepted(const std::vector<uint8_t>& b, std::string* message = nullptr) {
  try {
    isa::Executable::deserialize(b);
    return true;
  } catch (const FormatError& e) {
    if (message) *message = e.what();
    return false;
  }
}

// ----------------------------------------------------------- serialization

TEST(Serialize, RoundTrip) {
  const isa::Executable exe = sample();
  const auto bytes = exe.serialize();
  const isa::Executable back = isa::Executable::deserialize(bytes);
  expect_same(exe, back);
  EXPECT_EQ(back.serialize(), bytes) << "serialization is deterministic";
  EXPECT_EQ(std::memcmp(bytes.data(), "INFSIMX\0", 8), 0);
}

TEST(Serialize, EmptyExecutableRoundTrips) {
  isa::Executable exe;
  exe.metadata_json = "";
  const isa::Executable back = isa::Executable::deserialize(exe.serialize());
  expect_same(exe, back);
}

TEST(Serialize, SaveAndLoad) {
  const isa::Executable exe = sample();
  const std::string path = ::testing::TempDir() + "infsim_test_executable.infx";
  exe.save(path);
  expect_same(exe, isa::Executable::load(path));
  std::remove(path.c_str());
  try {
    isa::Executable::load(path);
    ADD_FAILURE() << "loaded a missing file";
  } catch (const FormatError& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
}

TEST(Serialize, EveryTruncationIsRejected) {
  const auto bytes = sample().serialize();
  for (size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    ASSERT_FALSE(accepted(cut)) << "accepted the first " << n << " of " << bytes.size() << " bytes";
  }
  std::vector<uint8_t> padded = bytes;
  padded.push_back(0);
  EXPECT_FALSE(accepted(padded));
}

TEST(Serialize, EveryTruncationWithFixedHeaderIsRejectedOrParsed) {
  // The same, with the header's size and hash recomputed so the section
  // parsers meet the missing bytes themselves: they must reject, never crash.
  const auto bytes = sample().serialize();
  for (size_t n = 40; n < bytes.size(); ++n) {
    std::vector<uint8_t> cut(bytes.begin(), bytes.begin() + n);
    reseal(cut);
    ASSERT_FALSE(accepted(cut)) << "accepted the first " << n << " of " << bytes.size() << " bytes";
  }
}

TEST(Serialize, EverySingleByteFlipIsRejected) {
  const auto bytes = sample().serialize();
  for (size_t i = 0; i < bytes.size(); ++i) {
    for (uint8_t mask : {0x01, 0x80, 0xff}) {
      std::vector<uint8_t> b = bytes;
      b[i] ^= mask;
      ASSERT_FALSE(accepted(b)) << "byte " << i << " ^ " << int(mask) << " accepted";
    }
  }
}

TEST(Serialize, CorruptionBehindAValidHashNeverCrashes) {
  // Corrupt payload bytes and recompute the hash: the parser either reads a
  // (different) executable or throws FormatError, whatever the bytes say.
  const auto bytes = sample().serialize();
  std::mt19937 rng(11);
  int rejected = 0;
  for (size_t i = 32; i < bytes.size(); ++i) {
    for (uint8_t mask : {0x01, 0x10, 0x80, 0xff}) {
      std::vector<uint8_t> b = bytes;
      b[i] ^= mask;
      reseal(b);
      rejected += !accepted(b);
    }
  }
  for (int n = 0; n < 3000; ++n) {
    std::vector<uint8_t> b = bytes;
    const int k = 1 + static_cast<int>(rng() % 8);
    for (int j = 0; j < k; ++j) b[32 + rng() % (b.size() - 32)] = static_cast<uint8_t>(rng());
    reseal(b);
    rejected += !accepted(b);
  }
  EXPECT_GT(rejected, 0);
}

TEST(Serialize, BadMagic) {
  auto b = sample().serialize();
  b[0] = 'X';
  std::string msg;
  ASSERT_FALSE(accepted(b, &msg));
  EXPECT_NE(msg.find("magic"), std::string::npos) << msg;
  std::vector<uint8_t> text(64, 'a');
  ASSERT_FALSE(accepted(text, &msg));
  EXPECT_NE(msg.find("not an infsim executable"), std::string::npos) << msg;
}

TEST(Serialize, WrongFormatVersion) {
  auto b = sample().serialize();
  const uint32_t v = isa::kFormatVersion + 1;
  std::memcpy(b.data() + 8, &v, 4);
  std::string msg;
  ASSERT_FALSE(accepted(b, &msg));
  EXPECT_NE(msg.find("format version " + std::to_string(v)), std::string::npos) << msg;
  EXPECT_NE(msg.find("not supported"), std::string::npos) << msg;
}

TEST(Serialize, WrongIsaVersion) {
  auto b = sample().serialize();
  const uint32_t v = isa::kIsaVersion + 1;
  std::memcpy(b.data() + 12, &v, 4);
  std::string msg;
  ASSERT_FALSE(accepted(b, &msg));
  EXPECT_NE(msg.find("ISA version " + std::to_string(v)), std::string::npos) << msg;
}

TEST(Serialize, HashMismatchAndSizeMismatchAreNamed) {
  auto b = sample().serialize();
  b.back() ^= 1;
  std::string msg;
  ASSERT_FALSE(accepted(b, &msg));
  EXPECT_NE(msg.find("hash"), std::string::npos) << msg;
  b = sample().serialize();
  b.pop_back();
  ASSERT_FALSE(accepted(b, &msg));
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

TEST(Serialize, UndecodableInstructionIsAFormatError) {
  isa::Executable exe = sample();
  auto b = exe.serialize();
  // Find the first encoded instruction word of the first stream (dma_copy, opcode 2,
  // desc=0 count=2 signal=0) and give it an unknown opcode.
  std::array<uint8_t, isa::kWordBytes> word;
  isa::encode(exe.streams[0].instructions[0], word.data());
  auto it = std::search(b.begin(), b.end(), word.begin(), word.end());
  ASSERT_NE(it, b.end());
  *it = 0xee;
  reseal(b);
  std::string msg;
  ASSERT_FALSE(accepted(b, &msg));
  EXPECT_NE(msg.find("opcode"), std::string::npos) << msg;
  EXPECT_NE(msg.find("dma0"), std::string::npos) << msg;
}

// -------------------------------------------------------------- validation

TEST(Validate, SampleIsValid) { EXPECT_NO_THROW(isa::validate(sample(), inf1())); }

// Applies an edit to the valid sample and expects validate() to name the problem.
void expect_invalid(const std::function<void(isa::Executable&)>& edit, const std::vector<std::string>& fragments) {
  isa::Executable exe = sample();
  edit(exe);
  try {
    isa::validate(exe, inf1());
    ADD_FAILURE() << "validated";
  } catch (const FormatError& e) {
    for (const auto& f : fragments) EXPECT_NE(std::string(e.what()).find(f), std::string::npos) << e.what();
  }
}

isa::Instruction& ins(isa::Executable& exe, isa::Engine e, size_t k) {
  for (auto& s : exe.streams)
    if (s.engine == e) return s.instructions.at(k);
  throw std::runtime_error("no such stream");
}

TEST(Validate, ApPartitionsOutOfRange) {
  expect_invalid(
      [](isa::Executable& exe) {
        ins(exe, isa::Engine::tensor, 0) = isa::assemble("load_stationary src=sbuf[120:136]@0:bf16[4:1] wait0=s0>=1");
        std::get<isa::MultiplyMoving>(ins(exe, isa::Engine::tensor, 1)).src.part_start = 120;
      },
      {"partitions 120..135", "128 partitions", "tensor instruction 0"});
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::TensorTensor>(ins(exe, isa::Engine::vector, 0)).dst.part_start = 125;
      },
      {"partitions 125..128", "dst"});
}

TEST(Validate, SbufOffsetBeyondPartitionSize) {
  expect_invalid(
      [](isa::Executable& exe) { std::get<isa::Activation>(ins(exe, isa::Engine::scalar, 0)).dst.offset = 98300; },
      {"outside sbuf partition size 98304", "dst"});
  // The last element is what counts: 8 bf16 at 98288 end at 98303, fine; at 98290 not.
  isa::Executable ok = sample();
  std::get<isa::Activation>(ins(ok, isa::Engine::scalar, 0)).dst.offset = 98288;
  std::get<isa::TensorTensor>(ins(ok, isa::Engine::vector, 0)).in0.offset = 98288;
  EXPECT_NO_THROW(isa::validate(ok, inf1()));
  expect_invalid(
      [](isa::Executable& exe) { std::get<isa::Activation>(ins(exe, isa::Engine::scalar, 0)).dst.offset = 98290; },
      {"outside sbuf partition size"});
  // Negative steps reaching below the start of the partition.
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::TensorTensor>(ins(exe, isa::Engine::vector, 0)).in0 =
            isa::parse_ap("sbuf[0:4]@2:bf16[2:-4,4:1]");
      },
      {"outside sbuf partition size"});
  expect_invalid(
      [](isa::Executable& exe) { exe.dma[1].dst.address = 98304 - 60; }, {"dma descriptor 1 dst", "outside sbuf"});
  expect_invalid(
      [](isa::Executable& exe) { std::get<isa::TensorTensor>(ins(exe, isa::Engine::vector, 0)).in1.offset = 16384; },
      {"outside psum partition size 16384"});
}

TEST(Validate, SemaphoreOutOfRange) {
  expect_invalid([](isa::Executable& exe) { isa::header_of(ins(exe, isa::Engine::dma0, 1)).wait0 = 32; },
                 {"semaphore 32 out of range", "32 per core"});
  expect_invalid([](isa::Executable& exe) { isa::header_of(ins(exe, isa::Engine::vector, 0)).signal = 200; },
                 {"semaphore 200 out of range"});
  expect_invalid([](isa::Executable& exe) { isa::header_of(ins(exe, isa::Engine::scalar, 0)).wait1 = 40; },
                 {"semaphore 40 out of range"});
  isa::Executable ok = sample();
  isa::header_of(ins(ok, isa::Engine::vector, 0)).signal = 31;
  EXPECT_NO_THROW(isa::validate(ok, inf1()));
}

TEST(Validate, DmaCopyDescriptorOutOfRange) {
  expect_invalid([](isa::Executable& exe) { std::get<isa::DmaCopy>(ins(exe, isa::Engine::dma0, 2)).desc = 3; },
                 {"descriptors 3+1", "table of 3"});
  expect_invalid([](isa::Executable& exe) { std::get<isa::DmaCopy>(ins(exe, isa::Engine::dma0, 0)).count = 4; },
                 {"descriptors 0+4"});
  expect_invalid([](isa::Executable& exe) { std::get<isa::DmaCopy>(ins(exe, isa::Engine::dma0, 0)).count = 0; },
                 {"descriptors 0+0"});
  expect_invalid([](isa::Executable& exe) { std::get<isa::DmaCopy>(ins(exe, isa::Engine::dma0, 2)).desc = 0xffffffffu; },
                 {"outside the table"});
}

TEST(Validate, DramRangeOutsideTheCoreSlice) {
  const uint64_t slice = sim::ChipConfig::named("inf1").dram_slice_bytes();
  expect_invalid([&](isa::Executable& exe) { exe.dma[0].src.address = slice - 16 * 8 * 4 + 4; },
                 {"dma descriptor 0 src", "outside the core's"});
  expect_invalid([&](isa::Executable& exe) { exe.dma[2].dst.part_step = -10000; }, {"dma descriptor 2 dst", "outside"});
  expect_invalid([&](isa::Executable& exe) { exe.tensors[1].dram_offset = slice - 8; }, {"tensor 'y'", "outside"});
  expect_invalid([&](isa::Executable& exe) { exe.constants[0].dram_offset = slice - 50; }, {"constant 0", "outside"});
  isa::Executable ok = sample();
  ok.dma[0].src.address = slice - 16 * 8 * 4;  // exactly up to the end
  ok.tensors[0].dram_offset = slice - 16 * 8 * 4;
  EXPECT_NO_THROW(isa::validate(ok, inf1()));
}

TEST(Validate, StationaryLargerThanTheArray) {
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::LoadStationary>(ins(exe, isa::Engine::tensor, 0)).src = isa::parse_ap("sbuf[0:16]@0:bf16[65:1]");
      },
      {"stationary [16, 65]", "128x64 array"});
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::LoadStationary>(ins(exe, isa::Engine::tensor, 0)).src = isa::parse_ap("sbuf[0:16]@0:bf16[8:1,9:1]");
      },
      {"stationary [16, 72]"});
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::LoadStationary>(ins(exe, isa::Engine::tensor, 0)).src = isa::parse_ap("psum[0:16]@0:fp32[8:1]");
      },
      {"must be in SBUF"});
}

TEST(Validate, MultiplyMovingDstNotInPsum) {
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::MultiplyMoving>(ins(exe, isa::Engine::tensor, 1)).dst = isa::parse_ap("sbuf[0:4]@0:fp32[8:1]");
      },
      {"dst", "must be in PSUM"});
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::MultiplyMoving>(ins(exe, isa::Engine::tensor, 1)).dst = isa::parse_ap("psum[0:4]@0:bf16[8:1]");
      },
      {"fp32"});
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::MultiplyMoving>(ins(exe, isa::Engine::tensor, 1)).dst = isa::parse_ap("psum[0:4]@2040:fp32[8:1]");
      },
      {"one 2048-byte PSUM bank"});
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::MultiplyMoving>(ins(exe, isa::Engine::tensor, 1)).dst = isa::parse_ap("psum[0:4]@0:fp32[9:1]");
      },
      {"moving has 8 columns, dst 9"});
}

TEST(Validate, EndOfProgramExactlyOnce) {
  expect_invalid([](isa::Executable& exe) { exe.streams[0].instructions.pop_back(); exe.streams[0].source_op.pop_back(); },
                 {"0 end_of_program"});
  expect_invalid(
      [](isa::Executable& exe) {
        exe.streams[1].instructions.push_back(isa::assemble("end_of_program code=1"));
        exe.streams[1].source_op.push_back(0);
      },
      {"2 end_of_program"});
}

TEST(Validate, InstructionOnTheWrongEngine) {
  expect_invalid(
      [](isa::Executable& exe) {
        ins(exe, isa::Engine::dma0, 1) = isa::assemble("load_stationary src=sbuf[0:16]@0:bf16[4:1]");
      },
      {"dma0", "load_stationary", "not allowed on this engine"});
  expect_invalid(
      [](isa::Executable& exe) { ins(exe, isa::Engine::vector, 0) = isa::assemble("dma_copy desc=0 count=1"); },
      {"vector", "dma_copy", "not allowed"});
  expect_invalid(
      [](isa::Executable& exe) {
        isa::Stream s = stream(isa::Engine::tensor, {"nop"});
        exe.streams.push_back(s);
      },
      {"two tensor streams"});
}

TEST(Validate, DmaElementCountMismatch) {
  expect_invalid([](isa::Executable& exe) { exe.dma[0].dst.dims[0].num = 6; },
                 {"dma descriptor 0", "source has 128 elements, destination 96"});
  expect_invalid([](isa::Executable& exe) { exe.dma[2].src.part_count = 4; },
                 {"dma descriptor 2", "source has 32 elements, destination 24"});
}

TEST(Validate, OtherOperandChecks) {
  expect_invalid(
      [](isa::Executable& exe) {
        std::get<isa::TensorTensor>(ins(exe, isa::Engine::vector, 0)).in1 = isa::parse_ap("psum[0:4]@0:fp32[7:1]");
      },
      {"operand shapes differ", "[4, 7] vs [4, 8]"});
  expect_invalid(
      [](isa::Executable& exe) { std::get<isa::TensorTensor>(ins(exe, isa::Engine::vector, 0)).in0 = {}; },
      {"in0: operand missing"});
  expect_invalid(
      [](isa::Executable& exe) { std::get<isa::Activation>(ins(exe, isa::Engine::scalar, 0)).bias.dtype = isa::Dtype::bf16; },
      {"bias"});
  expect_invalid(
      [](isa::Executable& exe) { std::get<isa::Activation>(ins(exe, isa::Engine::scalar, 0)).src.ndim = 5; },
      {"5 free dimensions"});
  expect_invalid(
      [](isa::Executable& exe) { std::get<isa::Activation>(ins(exe, isa::Engine::scalar, 0)).src.part_count = 0; },
      {"empty partition range"});
  expect_invalid([](isa::Executable& exe) { exe.num_cores = 5; }, {"needs 5 cores", "has 4"});
  expect_invalid([](isa::Executable& exe) { exe.streams[2].core = 1; }, {"core 1 out of range"});
  expect_invalid([](isa::Executable& exe) { exe.tensors[1].name = "x"; exe.tensors[1].kind = isa::TensorKind::input; },
                 {"'x'", "twice"});
  expect_invalid([](isa::Executable& exe) { exe.tensors[0].shape[1] = 0; }, {"not positive"});
}

// FP8 dtypes are refused on a device without FP8 (inf1) wherever they appear:
// instruction operands, DMA endpoints on chip and in DRAM, tensors.
TEST(Validate, Fp8NeedsADeviceWithFp8) {
  EXPECT_FALSE(inf1().fp8);
  EXPECT_TRUE(sim::ChipConfig::named("inf2").limits().fp8);
  for (isa::Dtype dt : {isa::Dtype::fp8_e4m3, isa::Dtype::fp8_e5m2}) {
    const std::string name = isa::to_string(dt);
    expect_invalid([&](isa::Executable& exe) { std::get<isa::Activation>(ins(exe, isa::Engine::scalar, 0)).dst.dtype = dt; },
                   {"scalar instruction 0", "dst", "dtype " + name, "FP8", "fp8 = 1"});
    expect_invalid([&](isa::Executable& exe) { exe.dma[0].dst.dtype = dt; }, {"dma descriptor 0 dst", name, "FP8"});
    expect_invalid([&](isa::Executable& exe) { exe.dma[2].dst.dtype = dt; }, {"dma descriptor 2 dst", name, "FP8"});
    expect_invalid([&](isa::Executable& exe) { exe.tensors[1].dtype = dt; }, {"tensor 'y'", name, "FP8"});
    // The same edits pass on a device with FP8.
    isa::Executable ok = sample();
    std::get<isa::Activation>(ins(ok, isa::Engine::scalar, 0)).dst.dtype = dt;
    std::get<isa::TensorTensor>(ins(ok, isa::Engine::vector, 0)).in0.dtype = dt;
    ok.dma[0].dst.dtype = dt;
    ok.dma[2].dst.dtype = dt;
    ok.tensors[1].dtype = dt;
    isa::DeviceLimits with_fp8 = inf1();
    with_fp8.fp8 = true;
    EXPECT_NO_THROW(isa::validate(ok, with_fp8));
    // And survive serialization.
    expect_same(ok, isa::Executable::deserialize(ok.serialize()));
  }
}

}  // namespace

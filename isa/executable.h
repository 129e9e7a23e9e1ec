// The executable container (.infx): everything the simulator runs, and the
// only thing that passes from the compiler to the simulator.
//
// File layout (all integers little-endian):
//   0   char[8]  magic "INFSIMX\0"
//   8   u32      container format version (kFormatVersion)
//   12  u32      ISA version the instruction words are encoded in
//   16  u64      file size in bytes
//   24  u64      content hash: FNV-1a 64 of bytes [40, file size)
//   32  u32      number of sections
//   36  u32      reserved (0)
//   40  {u32 kind, u32 reserved, u64 offset, u64 size} per section
//   ... section payloads (see SectionKind)
// Reading checks the magic, versions, size and hash first, then parses every
// section with bounds checks; validate() then checks the program against the
// limits of the device it is about to run on.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "isa_gen.h"

namespace infsim::isa {

constexpr uint32_t kFormatVersion = 2;  // 2: pipelines (stream phases, `next` endpoints); 1 is still read

// A pipelined executable (Executable::pipeline) has one stage per core and
// runs on any kMaxPipelineCores or fewer consecutive cores of an instance,
// across chips; a plain one on at most one chip's cores.
constexpr uint32_t kMaxPipelineCores = 64;

// DRAM endpoint addresses are offsets in the core's own DRAM slice, except
// fabric addresses: kFabricBase + chip x kChipWindow + an address in that
// chip's DRAM, which reach any chip of the instance across the chip-to-chip
// links (sim/system/instance.h routes them).
constexpr uint64_t kFabricBase = 1ull << 40;
constexpr uint64_t kChipWindow = 1ull << 36;

// A malformed, corrupted or invalid executable. The message says what and where.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

enum class SectionKind : uint32_t { metadata = 1, tensors = 2, constants = 3, dma = 4, code = 5, debug = 6 };

// next: the DRAM slice of the core running the next pipeline stage (the
// runtime connects each stage's core to its successor's at load, on this
// chip or across the links), address relative to that slice.
enum class Location : uint8_t { dram = 0, sbuf = 1, psum = 2, next = 3 };
const char* to_string(Location l);

// One side of a DMA transfer. Elements are visited partition-outermost, then
// the free dimensions outermost-first; source and destination must visit the
// same number of elements, and element k of one is copied to element k of the
// other, converted when the dtypes differ.
//   dram: element (p, i..) at byte address + (p*part_step + sum(i*step)) * size
//         (address relative to the core's DRAM slice)
//   next: as dram, in the next pipeline stage's core's slice
//   sbuf/psum: partition part_start + p at byte address + sum(i*step) * size
struct DmaEndpoint {
  Location loc = Location::dram;
  Dtype dtype = Dtype::fp32;
  uint64_t address = 0;
  uint32_t part_start = 0;  // sbuf/psum only
  uint32_t part_count = 1;
  int64_t part_step = 0;  // dram only, elements
  uint32_t ndim = 0;
  std::array<FreeDim, 4> dims{};

  uint64_t elements() const;
  bool operator==(const DmaEndpoint& o) const;
};

// Text form for listings, e.g. dram@0x400:fp32[8:1,784:8] or sbuf[0:128]@0:bf16[8:1].
std::string describe(const DmaEndpoint& e);

struct DmaDescriptor {
  DmaEndpoint src, dst;
  bool operator==(const DmaDescriptor& o) const { return src == o.src && dst == o.dst; }
};

enum class TensorKind : uint8_t { input = 0, output = 1 };

// A model input or output in DRAM, row-major.
struct TensorDesc {
  std::string name;
  TensorKind kind = TensorKind::input;
  Dtype dtype = Dtype::fp32;
  std::vector<int64_t> shape;
  uint32_t core = 0;
  uint64_t dram_offset = 0;  // bytes, in the core's DRAM slice

  uint64_t elements() const;
  uint64_t bytes() const { return elements() * dtype_bytes(dtype); }
};

// Bytes the runtime writes into a core's DRAM slice before the run (weights).
struct Constant {
  uint32_t core = 0;
  uint64_t dram_offset = 0;
  std::vector<uint8_t> bytes;
};

// The programs of one core. run: once per request. load: once when the
// model loads, before any request (a pipeline stage's resident weights into
// SBUF). send: after each run of a pipeline stage but the last, when the
// next stage is idle: moves the run's outputs to the next stage's core.
// Programs after the load program keep the core's SBUF and PSUM contents.
enum class Phase : uint8_t { run = 0, load = 1, send = 2 };
constexpr unsigned kNumPhases = 3;
const char* to_string(Phase p);

// One engine's instruction stream on one core, with its debug info.
struct Stream {
  uint32_t core = 0;
  Phase phase = Phase::run;
  Engine engine = Engine::tensor;
  std::vector<Instruction> instructions;
  std::vector<uint32_t> source_op;  // per instruction: index into Executable::source_ops
};

struct Executable {
  std::string metadata_json = "{}";  // compiler version, target, options
  uint32_t num_cores = 1;
  // One pipeline stage per core (core k feeds core k+1 with its send
  // program); inputs are on core 0, outputs on any core.
  bool pipeline = false;
  std::vector<TensorDesc> tensors;
  std::vector<Constant> constants;
  std::vector<DmaDescriptor> dma;
  std::vector<Stream> streams;
  std::vector<std::string> source_ops;  // debug names of the model ops

  std::vector<uint8_t> serialize() const;
  // Throws FormatError naming the section and offset of the first problem.
  static Executable deserialize(const std::vector<uint8_t>& bytes);
  void save(const std::string& path) const;
  static Executable load(const std::string& path);
};

// What a device offers; the validator checks an executable against it.
struct DeviceLimits {
  uint32_t cores = 4;
  uint32_t partitions = 128;
  uint64_t sbuf_partition_bytes = 0;
  uint64_t psum_partition_bytes = 0;
  uint64_t dram_slice_bytes = 0;  // per core
  uint64_t dram_bytes = 0;        // per chip (the extent of a fabric window)
  uint32_t semaphores = 0;        // per core
  uint32_t array_rows = 128;      // systolic array: contraction (partition) size
  uint32_t array_cols = 64;       // systolic array: stationary free size
  uint32_t psum_bank_bytes = 2048;
  uint32_t dma_queues = 4;
  bool fp8 = false;  // fp8_e4m3 / fp8_e5m2 operands, tensors and DMA endpoints allowed
};

// Checks every offset, size, address and operand. Throws FormatError.
void validate(const Executable& exe, const DeviceLimits& limits);

uint64_t fnv1a64(const uint8_t* data, size_t n);

}  // namespace infsim::isa

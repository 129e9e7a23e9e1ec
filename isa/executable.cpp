#include "isa/executable.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <tuple>

#include "isa/isa_support.h"

namespace infsim::isa {

namespace {

constexpr char kMagic[8] = {'I', 'N', 'F', 'S', 'I', 'M', 'X', '\0'};
constexpr size_t kHeaderBytes = 40;
constexpr size_t kSectionEntryBytes = 24;
constexpr uint32_t kMaxRank = 8;
// Serialized DmaEndpoint: loc, dtype, address, part_start, part_count, part_step, ndim, 4 x (num, step).
constexpr size_t kEndpointBytes = 1 + 1 + 8 + 4 + 4 + 8 + 4 + 4 * (4 + 4);

// ------------------------------------------------------------------ byte I/O

class Writer {
 public:
  std::vector<uint8_t> out;
  template <typename T>
  void put(T v) {
    static_assert(std::is_trivially_copyable_v<T>);
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint32_t>(static_cast<uint32_t>(s.size()));
    out.insert(out.end(), s.begin(), s.end());
  }
  void bytes(const std::vector<uint8_t>& b) {
    put<uint64_t>(b.size());
    out.insert(out.end(), b.begin(), b.end());
  }
};

// Bounds-checked reader over one section; errors name the section and offset.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size, const char* section) : p_(data), n_(size), section_(section) {}
  template <typename T>
  T get(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string str(const char* what) {
    const uint32_t n = get<uint32_t>(what);
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p_ + pos_), n);
    pos_ += n;
    return s;
  }
  std::vector<uint8_t> bytes(const char* what) {
    const uint64_t n = get<uint64_t>(what);
    need(n, what);
    std::vector<uint8_t> b(p_ + pos_, p_ + pos_ + n);
    pos_ += n;
    return b;
  }
  const uint8_t* raw(size_t n, const char* what) {
    need(n, what);
    const uint8_t* r = p_ + pos_;
    pos_ += n;
    return r;
  }
  // A count that must fit in what is left, at `min_each` bytes per item.
  uint64_t count(const char* what, size_t min_each) {
    const uint64_t n = get<uint64_t>(what);
    if (min_each && n > (n_ - pos_) / min_each)
      throw FormatError(fmt::format("{} section: {} count {} exceeds the section size", section_, what, n));
    return n;
  }
  template <typename E>
  E enum_value(unsigned limit, const char* what) {
    const uint8_t v = get<uint8_t>(what);
    if (v >= limit) throw FormatError(fmt::format("{} section: invalid {} {} at offset {}", section_, what, v, pos_ - 1));
    return static_cast<E>(v);
  }
  void done() const {
    if (pos_ != n_) throw FormatError(fmt::format("{} section: {} trailing bytes", section_, n_ - pos_));
  }

 private:
  void need(uint64_t k, const char* what) const {
    if (k > n_ - pos_)
      throw FormatError(fmt::format("{} section truncated: reading {} at offset {} needs {} bytes, {} left", section_,
                                    what, pos_, k, n_ - pos_));
  }
  const uint8_t* p_;
  size_t n_;
  size_t pos_ = 0;
  const char* section_;
};

void put_endpoint(Writer& w, const DmaEndpoint& e) {
  w.put<uint8_t>(static_cast<uint8_t>(e.loc));
  w.put<uint8_t>(static_cast<uint8_t>(e.dtype));
  w.put<uint64_t>(e.address);
  w.put<uint32_t>(e.part_start);
  w.put<uint32_t>(e.part_count);
  w.put<int64_t>(e.part_step);
  w.put<uint32_t>(e.ndim);
  for (const auto& d : e.dims) {
    w.put<uint32_t>(d.num);
    w.put<int32_t>(d.step);
  }
}

DmaEndpoint get_endpoint(Reader& r) {
  DmaEndpoint e;
  e.loc = r.enum_value<Location>(4, "dma location");
  e.dtype = r.enum_value<Dtype>(kNumDtype, "dma dtype");
  e.address = r.get<uint64_t>("dma address");
  e.part_start = r.get<uint32_t>("dma part_start");
  e.part_count = r.get<uint32_t>("dma part_count");
  e.part_step = r.get<int64_t>("dma part_step");
  e.ndim = r.get<uint32_t>("dma ndim");
  for (auto& d : e.dims) {
    d.num = r.get<uint32_t>("dma dim num");
    d.step = r.get<int32_t>("dma dim step");
  }
  return e;
}

const char* section_name(SectionKind k) {
  switch (k) {
    case SectionKind::metadata: return "metadata";
    case SectionKind::tensors: return "tensors";
    case SectionKind::constants: return "constants";
    case SectionKind::dma: return "dma";
    case SectionKind::code: return "code";
    case SectionKind::debug: return "debug";
  }
  return "?";
}

}  // namespace

const char* to_string(Location l) {
  switch (l) {
    case Location::dram: return "dram";
    case Location::sbuf: return "sbuf";
    case Location::psum: return "psum";
    case Location::next: return "next";
  }
  return "?";
}

const char* to_string(Phase p) {
  switch (p) {
    case Phase::run: return "run";
    case Phase::load: return "load";
    case Phase::send: return "send";
  }
  return "?";
}

uint64_t fnv1a64(const uint8_t* data, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ data[i]) * 0x100000001b3ull;
  return h;
}

std::string describe(const DmaEndpoint& e) {
  std::string s = to_string(e.loc);
  const bool dram = e.loc == Location::dram || e.loc == Location::next;
  if (dram)
    s += fmt::format("@{:#x}:{}[{}:{}", e.address, to_string(e.dtype), e.part_count, e.part_step);
  else
    s += fmt::format("[{}:{}]@{}:{}[", e.part_start, e.part_start + e.part_count, e.address, to_string(e.dtype));
  for (uint32_t i = 0; i < e.ndim; ++i)
    s += fmt::format("{}{}:{}", (i || dram) ? "," : "", e.dims[i].num, e.dims[i].step);
  return s + "]";
}

uint64_t DmaEndpoint::elements() const {
  uint64_t n = part_count;
  for (uint32_t i = 0; i < ndim && i < 4; ++i) n *= dims[i].num;
  return n;
}

bool DmaEndpoint::operator==(const DmaEndpoint& o) const {
  return loc == o.loc && dtype == o.dtype && address == o.address && part_start == o.part_start &&
         part_count == o.part_count && part_step == o.part_step && ndim == o.ndim && dims == o.dims;
}

uint64_t TensorDesc::elements() const {
  uint64_t n = 1;
  for (int64_t d : shape) n *= static_cast<uint64_t>(d);
  return n;
}

// ------------------------------------------------------------ serialization

std::vector<uint8_t> Executable::serialize() const {
  std::vector<std::pair<SectionKind, std::vector<uint8_t>>> sections;
  {
    Writer w;
    w.str(metadata_json);
    sections.emplace_back(SectionKind::metadata, std::move(w.out));
  }
  {
    Writer w;
    w.put<uint64_t>(tensors.size());
    for (const auto& t : tensors) {
      w.str(t.name);
      w.put<uint8_t>(static_cast<uint8_t>(t.kind));
      w.put<uint8_t>(static_cast<uint8_t>(t.dtype));
      w.put<uint32_t>(t.core);
      w.put<uint64_t>(t.dram_offset);
      w.put<uint32_t>(static_cast<uint32_t>(t.shape.size()));
      for (int64_t d : t.shape) w.put<int64_t>(d);
    }
    sections.emplace_back(SectionKind::tensors, std::move(w.out));
  }
  {
    Writer w;
    w.put<uint64_t>(constants.size());
    for (const auto& c : constants) {
      w.put<uint32_t>(c.core);
      w.put<uint64_t>(c.dram_offset);
      w.bytes(c.bytes);
    }
    sections.emplace_back(SectionKind::constants, std::move(w.out));
  }
  {
    Writer w;
    w.put<uint64_t>(dma.size());
    for (const auto& d : dma) {
      put_endpoint(w, d.src);
      put_endpoint(w, d.dst);
    }
    sections.emplace_back(SectionKind::dma, std::move(w.out));
  }
  {
    Writer w;
    w.put<uint32_t>(num_cores);
    w.put<uint8_t>(pipeline ? 1 : 0);
    w.put<uint64_t>(streams.size());
    for (const auto& s : streams) {
      w.put<uint32_t>(s.core);
      w.put<uint8_t>(static_cast<uint8_t>(s.phase));
      w.put<uint8_t>(static_cast<uint8_t>(s.engine));
      w.put<uint64_t>(s.instructions.size());
      std::array<uint8_t, kWordBytes> word;
      for (const auto& ins : s.instructions) {
        encode(ins, word.data());
        w.out.insert(w.out.end(), word.begin(), word.end());
      }
    }
    sections.emplace_back(SectionKind::code, std::move(w.out));
  }
  {
    Writer w;
    w.put<uint64_t>(source_ops.size());
    for (const auto& s : source_ops) w.str(s);
    for (const auto& s : streams) {
      w.put<uint64_t>(s.source_op.size());
      for (uint32_t i : s.source_op) w.put<uint32_t>(i);
    }
    sections.emplace_back(SectionKind::debug, std::move(w.out));
  }

  Writer f;
  f.out.insert(f.out.end(), kMagic, kMagic + 8);
  f.put<uint32_t>(kFormatVersion);
  f.put<uint32_t>(kIsaVersion);
  f.put<uint64_t>(0);  // file size, patched below
  f.put<uint64_t>(0);  // hash, patched below
  f.put<uint32_t>(static_cast<uint32_t>(sections.size()));
  f.put<uint32_t>(0);
  uint64_t offset = kHeaderBytes + kSectionEntryBytes * sections.size();
  for (const auto& [kind, payload] : sections) {
    f.put<uint32_t>(static_cast<uint32_t>(kind));
    f.put<uint32_t>(0);
    f.put<uint64_t>(offset);
    f.put<uint64_t>(payload.size());
    offset += payload.size();
  }
  for (const auto& s : sections) f.out.insert(f.out.end(), s.second.begin(), s.second.end());
  const uint64_t size = f.out.size();
  std::memcpy(f.out.data() + 16, &size, 8);
  const uint64_t hash = fnv1a64(f.out.data() + kHeaderBytes, f.out.size() - kHeaderBytes);
  std::memcpy(f.out.data() + 24, &hash, 8);
  return std::move(f.out);
}

Executable Executable::deserialize(const std::vector<uint8_t>& b) {
  if (b.size() < kHeaderBytes)
    throw FormatError(fmt::format("not an infsim executable: {} bytes is shorter than the {}-byte header", b.size(),
                                  kHeaderBytes));
  if (std::memcmp(b.data(), kMagic, 8) != 0) throw FormatError("not an infsim executable: bad magic number");
  Reader h(b.data(), b.size(), "header");
  h.raw(8, "magic");
  const auto format = h.get<uint32_t>("format version");
  const auto isa_version = h.get<uint32_t>("isa version");
  const auto size = h.get<uint64_t>("file size");
  const auto hash = h.get<uint64_t>("hash");
  const auto nsec = h.get<uint32_t>("section count");
  if (format != kFormatVersion && format != 1)
    throw FormatError(fmt::format("executable format version {} is not supported (this infsim reads versions 1 "
                                  "and {})", format, kFormatVersion));
  if (isa_version != kIsaVersion)
    throw FormatError(fmt::format("executable uses ISA version {}, this infsim implements version {}: recompile it",
                                  isa_version, kIsaVersion));
  if (size != b.size())
    throw FormatError(fmt::format("executable is truncated or padded: header says {} bytes, file has {}", size, b.size()));
  if (fnv1a64(b.data() + kHeaderBytes, b.size() - kHeaderBytes) != hash)
    throw FormatError("executable is corrupted: content hash mismatch");
  if (nsec > 64) throw FormatError(fmt::format("header: implausible section count {}", nsec));
  // The section count and this word are the only header bytes outside the
  // hash: reserved must be 0 and no section may overlap the section table.
  if (h.get<uint32_t>("reserved") != 0) throw FormatError("header: reserved word is not 0");
  const uint64_t table_end = kHeaderBytes + uint64_t{kSectionEntryBytes} * nsec;

  std::map<SectionKind, std::pair<const uint8_t*, size_t>> sec;
  for (uint32_t i = 0; i < nsec; ++i) {
    const auto kind = h.get<uint32_t>("section kind");
    if (h.get<uint32_t>("reserved") != 0) throw FormatError(fmt::format("section {}: reserved word is not 0", i));
    const auto off = h.get<uint64_t>("section offset");
    const auto len = h.get<uint64_t>("section size");
    if (off > b.size() || len > b.size() - off)
      throw FormatError(fmt::format("section {} (kind {}) lies outside the file", i, kind));
    if (off < table_end)
      throw FormatError(fmt::format("section {} (kind {}) overlaps the section table", i, kind));
    sec[static_cast<SectionKind>(kind)] = {b.data() + off, len};
  }
  auto open = [&](SectionKind k) {
    auto it = sec.find(k);
    if (it == sec.end()) throw FormatError(fmt::format("executable has no {} section", section_name(k)));
    return Reader(it->second.first, it->second.second, section_name(k));
  };

  Executable exe;
  {
    Reader r = open(SectionKind::metadata);
    exe.metadata_json = r.str("metadata");
    r.done();
  }
  {
    Reader r = open(SectionKind::tensors);
    const uint64_t n = r.count("tensor", 22);
    for (uint64_t i = 0; i < n; ++i) {
      TensorDesc t;
      t.name = r.str("tensor name");
      t.kind = r.enum_value<TensorKind>(2, "tensor kind");
      t.dtype = r.enum_value<Dtype>(kNumDtype, "tensor dtype");
      t.core = r.get<uint32_t>("tensor core");
      t.dram_offset = r.get<uint64_t>("tensor dram offset");
      const auto rank = r.get<uint32_t>("tensor rank");
      if (rank > kMaxRank) throw FormatError(fmt::format("tensors section: tensor '{}' has rank {} > {}", t.name, rank, kMaxRank));
      for (uint32_t k = 0; k < rank; ++k) t.shape.push_back(r.get<int64_t>("tensor dim"));
      exe.tensors.push_back(std::move(t));
    }
    r.done();
  }
  {
    Reader r = open(SectionKind::constants);
    const uint64_t n = r.count("constant", 20);
    for (uint64_t i = 0; i < n; ++i) {
      Constant c;
      c.core = r.get<uint32_t>("constant core");
      c.dram_offset = r.get<uint64_t>("constant dram offset");
      c.bytes = r.bytes("constant bytes");
      exe.constants.push_back(std::move(c));
    }
    r.done();
  }
  {
    Reader r = open(SectionKind::dma);
    const uint64_t n = r.count("dma descriptor", 2 * kEndpointBytes);
    exe.dma.reserve(n);
    for (uint64_t i = 0; i < n; ++i) {
      DmaDescriptor d;
      d.src = get_endpoint(r);
      d.dst = get_endpoint(r);
      exe.dma.push_back(d);
    }
    r.done();
  }
  {
    Reader r = open(SectionKind::code);
    exe.num_cores = r.get<uint32_t>("core count");
    if (format >= 2) {  // version 1 has neither pipelines nor phases: every stream is a run program
      const auto flags = r.get<uint8_t>("pipeline flag");
      if (flags > 1) throw FormatError(fmt::format("code section: pipeline flag {} is not 0 or 1", flags));
      exe.pipeline = flags == 1;
    }
    const uint64_t n = r.count("stream", format >= 2 ? 14 : 13);
    for (uint64_t i = 0; i < n; ++i) {
      Stream s;
      s.core = r.get<uint32_t>("stream core");
      if (format >= 2) s.phase = r.enum_value<Phase>(kNumPhases, "stream phase");
      s.engine = r.enum_value<Engine>(kNumEngine, "stream engine");
      const uint64_t count = r.count("instruction", kWordBytes);
      s.instructions.reserve(count);
      for (uint64_t k = 0; k < count; ++k) {
        const uint8_t* word = r.raw(kWordBytes, "instruction");
        try {
          s.instructions.push_back(decode(word));
        } catch (const IsaError& e) {
          throw FormatError(fmt::format("code section: core {} {} stream, instruction {}: {}", s.core,
                                        to_string(s.engine), k, e.what()));
        }
      }
      exe.streams.push_back(std::move(s));
    }
    r.done();
  }
  {
    Reader r = open(SectionKind::debug);
    const uint64_t n = r.count("source op", 4);
    for (uint64_t i = 0; i < n; ++i) exe.source_ops.push_back(r.str("source op"));
    for (auto& s : exe.streams) {
      const uint64_t k = r.count("debug entry", 4);
      if (k != s.instructions.size())
        throw FormatError(fmt::format("debug section: core {} {} stream has {} entries for {} instructions", s.core,
                                      to_string(s.engine), k, s.instructions.size()));
      s.source_op.resize(k);
      for (auto& x : s.source_op) {
        x = r.get<uint32_t>("debug entry");
        if (x >= exe.source_ops.size()) throw FormatError(fmt::format("debug section: source op index {} out of range", x));
      }
    }
    r.done();
  }
  return exe;
}

void Executable::save(const std::string& path) const {
  const auto bytes = serialize();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw FormatError("cannot write " + path);
  f.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  if (!f) throw FormatError("error writing " + path);
}

Executable Executable::load(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw FormatError("cannot open " + path);
  // Block reads, not byte by byte: weights make executables hundreds of MB.
  std::vector<uint8_t> bytes;
  std::error_code ec;
  if (const auto size = std::filesystem::file_size(path, ec); !ec) bytes.reserve(size);
  char block[1 << 16];
  while (f.read(block, sizeof block) || f.gcount() > 0) bytes.insert(bytes.end(), block, block + f.gcount());
  try {
    return deserialize(bytes);
  } catch (const FormatError& e) {
    throw FormatError(path + ": " + e.what());
  }
}

// ----------------------------------------------------------------- validation

namespace {

// Element-offset span [lo, hi] touched by the free dimensions.
std::pair<int64_t, int64_t> span(uint32_t ndim, const std::array<FreeDim, 4>& dims) {
  int64_t lo = 0, hi = 0;
  for (uint32_t i = 0; i < ndim; ++i) {
    const int64_t reach = static_cast<int64_t>(dims[i].num - 1) * dims[i].step;
    (reach < 0 ? lo : hi) += reach;
  }
  return {lo, hi};
}

uint64_t free_elements(uint32_t ndim, const std::array<FreeDim, 4>& dims) {
  uint64_t n = 1;
  for (uint32_t i = 0; i < ndim; ++i) n *= dims[i].num;
  return n;
}

void check_dims(uint32_t ndim, const std::array<FreeDim, 4>& dims, const std::string& where) {
  if (ndim > 4) throw FormatError(fmt::format("{}: {} free dimensions (at most 4)", where, ndim));
  for (uint32_t i = 0; i < ndim; ++i)
    if (dims[i].num == 0) throw FormatError(fmt::format("{}: free dimension {} has size 0", where, i));
}

// FP8 dtypes exist only on devices that have them (inf2-class).
void check_dtype(Dtype dtype, const DeviceLimits& lim, const std::string& where) {
  if (!lim.fp8 && (dtype == Dtype::fp8_e4m3 || dtype == Dtype::fp8_e5m2))
    throw FormatError(fmt::format("{}: dtype {} needs a device with FP8 support (configuration parameter fp8 = 1, "
                                  "inf2-class); this device has none",
                                  where, to_string(dtype)));
}

// Checks an on-chip region: partition range and byte range inside each partition.
void check_onchip(Location loc, Dtype dtype, uint64_t offset, uint32_t part_start, uint32_t part_count, uint32_t ndim,
                  const std::array<FreeDim, 4>& dims, const DeviceLimits& lim, const std::string& where) {
  check_dims(ndim, dims, where);
  if (part_count == 0) throw FormatError(where + ": empty partition range");
  if (uint64_t{part_start} + part_count > lim.partitions)
    throw FormatError(fmt::format("{}: partitions {}..{} exceed the {} partitions", where, part_start,
                                  part_start + part_count - 1, lim.partitions));
  const uint64_t limit = loc == Location::psum ? lim.psum_partition_bytes : lim.sbuf_partition_bytes;
  const auto [lo, hi] = span(ndim, dims);
  const int64_t size = dtype_bytes(dtype);
  const int64_t first = static_cast<int64_t>(offset) + lo * size;
  const int64_t end = static_cast<int64_t>(offset) + (hi + 1) * size;
  if (first < 0 || end > static_cast<int64_t>(limit))
    throw FormatError(fmt::format("{}: bytes {}..{} outside {} partition size {}", where, first, end - 1,
                                  to_string(loc), limit));
}

void check_ap(const AccessPattern& ap, const DeviceLimits& lim, const std::string& where, bool sbuf_only = false) {
  if (ap.space == Space::none) throw FormatError(where + ": operand missing");
  check_dtype(ap.dtype, lim, where);
  if (sbuf_only && ap.space != Space::sbuf) throw FormatError(where + ": must be in SBUF");
  check_onchip(ap.space == Space::psum ? Location::psum : Location::sbuf, ap.dtype, ap.offset, ap.part_start,
               ap.part_count, ap.ndim, ap.dims, lim, where);
  // Engines reach the partitions through 32-lane quadrants: a range starts
  // at a quadrant and may not run past the end of the aligned 32/64/128-lane
  // group that start begins (0: 128, 32: 32, 64: 64, 96: 32 lanes).
  const uint32_t start = ap.part_start;
  const uint32_t span = start == 0 ? 128 : (start == 64 ? 64 : 32);
  if (start % 32 != 0 || ap.part_count > span)
    throw FormatError(fmt::format("{}: partitions {}..{}: an engine access must start at partition 0, 32, 64 or 96 "
                                  "and span at most 128, 32, 64 or 32 partitions from there",
                                  where, start, start + ap.part_count - 1));
}

uint64_t ap_free(const AccessPattern& ap) { return free_elements(ap.ndim, ap.dims); }

void check_same_shape(const AccessPattern& a, const AccessPattern& b, const std::string& where) {
  if (a.part_count != b.part_count || ap_free(a) != ap_free(b))
    throw FormatError(fmt::format("{}: operand shapes differ ([{}, {}] vs [{}, {}])", where, a.part_count, ap_free(a),
                                  b.part_count, ap_free(b)));
}

void check_endpoint(const DmaEndpoint& e, const DeviceLimits& lim, const std::string& where) {
  check_dtype(e.dtype, lim, where);
  if (e.loc == Location::next && e.address >= kFabricBase)
    throw FormatError(where + ": a next-stage address is in that core's slice, never a fabric address");
  if (e.loc == Location::dram || e.loc == Location::next) {
    check_dims(e.ndim, e.dims, where);
    if (e.part_count == 0) throw FormatError(where + ": empty outer dimension");
    auto [lo, hi] = span(e.ndim, e.dims);
    const int64_t reach = static_cast<int64_t>(e.part_count - 1) * e.part_step;
    (reach < 0 ? lo : hi) += reach;
    const int64_t size = dtype_bytes(e.dtype);
    if (e.address >= kFabricBase) {  // another chip's (or this chip's) DRAM by fabric address
      const uint64_t window = (e.address - kFabricBase) / kChipWindow;
      const int64_t base = static_cast<int64_t>(kFabricBase + window * kChipWindow);
      const int64_t first = static_cast<int64_t>(e.address) + lo * size - base;
      const int64_t end = static_cast<int64_t>(e.address) + (hi + 1) * size - base;
      if (window >= 64 || first < 0 || end > static_cast<int64_t>(lim.dram_bytes))
        throw FormatError(fmt::format("{}: fabric DRAM bytes {:#x}..{:#x} of chip {} outside its {} MiB", where, first,
                                      end - 1, window, lim.dram_bytes >> 20));
      return;
    }
    const int64_t first = static_cast<int64_t>(e.address) + lo * size;
    const int64_t end = static_cast<int64_t>(e.address) + (hi + 1) * size;
    if (first < 0 || end > static_cast<int64_t>(lim.dram_slice_bytes))
      throw FormatError(fmt::format("{}: DRAM bytes {:#x}..{:#x} outside the core's {} MiB slice", where, first,
                                    end - 1, lim.dram_slice_bytes >> 20));
  } else {
    check_onchip(e.loc, e.dtype, e.address, e.part_start, e.part_count, e.ndim, e.dims, lim, where);
  }
}

// Per-opcode operand checks: everything that can be known before running.
struct OperandChecker {
  const Executable& exe;
  const DeviceLimits& lim;
  const std::string& where;
  // Whether the stream may write the next stage's DRAM: a send program of a pipeline stage but the last.
  bool may_send = false;

  void ap(const AccessPattern& a, const char* name, bool sbuf_only = false) const {
    check_ap(a, lim, where + " " + name, sbuf_only);
  }
  // An optional FP32 column [P, 1] matching `like`'s partitions.
  void column(const AccessPattern& c, const AccessPattern& like, const char* name) const {
    if (c.space == Space::none) return;
    ap(c, name);
    if (c.dtype != Dtype::fp32 || c.part_count != like.part_count || ap_free(c) != 1)
      throw FormatError(where + " " + name + ": must be an fp32 column with one element per input partition");
  }
  void same(const AccessPattern& a, const AccessPattern& b) const { check_same_shape(a, b, where); }
  void fail(const std::string& what) const { throw FormatError(where + ": " + what); }

  void operator()(const Nop&) const {}
  void operator()(const EndOfProgram&) const {}
  void operator()(const DmaCopy& x) const {
    if (x.count == 0 || uint64_t{x.desc} + x.count > exe.dma.size())
      fail(fmt::format("descriptors {}+{} outside the table of {}", x.desc, x.count, exe.dma.size()));
    for (uint32_t i = x.desc; i < x.desc + x.count; ++i)
    {
      if (exe.dma[i].src.elements() != exe.dma[i].dst.elements())
        fail(fmt::format("dma descriptor {}: source has {} elements, destination {}", i, exe.dma[i].src.elements(),
                         exe.dma[i].dst.elements()));
      if (exe.dma[i].src.loc == Location::next)
        fail(fmt::format("dma descriptor {}: reads the next stage's DRAM (a stage only writes its successor's)", i));
      if (exe.dma[i].dst.loc == Location::next && !may_send)
        fail(fmt::format("dma descriptor {}: writes the next stage's DRAM outside a send program of a pipeline "
                         "stage that has a successor", i));
    }
  }
  void operator()(const DmaGather& x) const {
    if (x.desc >= exe.dma.size()) fail(fmt::format("descriptor {} outside the table of {}", x.desc, exe.dma.size()));
    ap(x.index, "index");
    const DmaDescriptor& d = exe.dma[x.desc];
    if (x.index.dtype != Dtype::int32 || ap_free(x.index) != 1) fail("index must be an int32 column [P, 1]");
    if (d.src.loc == Location::next || d.dst.loc == Location::next)
      fail(fmt::format("descriptor {}: a gather cannot reach the next stage's DRAM", x.desc));
    if (d.dst.loc == Location::dram || d.dst.part_count != x.index.part_count)
      fail(fmt::format("descriptor {} must gather into {} on-chip partitions, one per index", x.desc,
                       x.index.part_count));
    if (d.src.elements() / d.src.part_count != d.dst.elements() / d.dst.part_count)
      fail(fmt::format("descriptor {}: table rows and destination rows differ in size", x.desc));
  }
  void operator()(const LoadStationary& x) const {
    ap(x.src, "src", true);
    if (x.src.part_count > lim.array_rows || ap_free(x.src) > lim.array_cols)
      fail(fmt::format("stationary [{}, {}] larger than the {}x{} array", x.src.part_count, ap_free(x.src),
                       lim.array_rows, lim.array_cols));
  }
  void operator()(const MultiplyMoving& x) const {
    ap(x.src, "src", true);
    ap(x.dst, "dst");
    if (x.dst.space != Space::psum) fail("dst must be in PSUM");
    if (x.dst.dtype != (x.src.dtype == Dtype::int8 ? Dtype::int32 : Dtype::fp32))
      fail("dst: PSUM accumulates fp32, or int32 for int8 operands");
    if (x.src.part_count > lim.array_rows) fail("src has more partitions than the array has rows");
    if (ap_free(x.src) != ap_free(x.dst))
      fail(fmt::format("moving has {} columns, dst {}", ap_free(x.src), ap_free(x.dst)));
    if (ap_free(x.dst) > lim.psum_bank_bytes / 4 ||
        x.dst.offset % lim.psum_bank_bytes + ap_free(x.dst) * 4 > lim.psum_bank_bytes)
      fail(fmt::format("dst must lie inside one {}-byte PSUM bank", lim.psum_bank_bytes));
  }
  void operator()(const PeTranspose& x) const {
    ap(x.src, "src", true);
    ap(x.dst, "dst");
    if (x.dst.space != Space::psum || x.dst.dtype != Dtype::fp32) fail("dst must be fp32 in PSUM");
    if (x.src.part_count > lim.array_rows || ap_free(x.src) > lim.array_cols)
      fail(fmt::format("src [{}, {}] larger than the {}x{} array", x.src.part_count, ap_free(x.src), lim.array_rows,
                       lim.array_cols));
    if (x.dst.part_count != ap_free(x.src) || ap_free(x.dst) != x.src.part_count)
      fail(fmt::format("dst must be [{}, {}]", ap_free(x.src), x.src.part_count));
  }
  void operator()(const Activation& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    same(x.src, x.dst);
    column(x.bias, x.src, "bias");
    column(x.accum, x.src, "accum");
  }
  void operator()(const TensorTensor& x) const {
    ap(x.in0, "in0");
    ap(x.in1, "in1");
    ap(x.dst, "dst");
    same(x.in0, x.dst);
    same(x.in1, x.dst);
  }
  void operator()(const TensorScalar& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    same(x.src, x.dst);
    column(x.col0, x.src, "col0");
    column(x.col1, x.src, "col1");
  }
  void operator()(const TensorReduce& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    if (x.op != AluOp::add && x.op != AluOp::mul && x.op != AluOp::max && x.op != AluOp::min)
      fail(std::string("cannot reduce with ") + to_string(x.op));
    if (x.axes < 1 || x.axes > x.src.ndim) fail(fmt::format("axes {} not in 1..{}", x.axes, x.src.ndim));
    uint64_t kept = 1;
    for (uint32_t i = 0; i < x.src.ndim - x.axes; ++i) kept *= x.src.dims[i].num;
    if (x.dst.part_count != x.src.part_count || ap_free(x.dst) != kept)
      fail(fmt::format("dst must be [{}, {}]", x.src.part_count, kept));
  }
  void operator()(const TensorCopy& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    same(x.src, x.dst);
  }
  void operator()(const Transpose& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    if (x.src.part_count > 32 || ap_free(x.src) > 32) fail("transposes at most 32 partitions x 32 elements");
    if (x.dst.part_count != ap_free(x.src) || ap_free(x.dst) != x.src.part_count)
      fail(fmt::format("dst must be [{}, {}]", ap_free(x.src), x.src.part_count));
  }
  void operator()(const BnStats& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    if (x.dst.dtype != Dtype::fp32 || x.dst.part_count != x.src.part_count || ap_free(x.dst) != 3)
      fail(fmt::format("dst must be fp32 [{}, 3]", x.src.part_count));
  }
  void operator()(const BnAggr& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    if (x.src.dtype != Dtype::fp32 || ap_free(x.src) % 3 != 0) fail("src must be fp32 [P, 3k]");
    if (x.dst.dtype != Dtype::fp32 || x.dst.part_count != x.src.part_count || ap_free(x.dst) != 2)
      fail(fmt::format("dst must be fp32 [{}, 2]", x.src.part_count));
  }
  void operator()(const Select& x) const {
    ap(x.pred, "pred");
    ap(x.in0, "in0");
    ap(x.in1, "in1");
    ap(x.dst, "dst");
    same(x.pred, x.dst);
    same(x.in0, x.dst);
    same(x.in1, x.dst);
  }
  void operator()(const Memset& x) const { ap(x.dst, "dst"); }
  void operator()(const Iota& x) const { ap(x.dst, "dst"); }
  void operator()(const Reciprocal& x) const {
    ap(x.src, "src");
    ap(x.dst, "dst");
    same(x.src, x.dst);
  }
};

}  // namespace

void validate(const Executable& exe, const DeviceLimits& lim) {
  const uint32_t max_cores = exe.pipeline ? kMaxPipelineCores : lim.cores;
  if (exe.num_cores == 0 || exe.num_cores > max_cores)
    throw FormatError(exe.pipeline
                          ? fmt::format("pipeline of {} stages: 1 to {} are allowed", exe.num_cores, max_cores)
                          : fmt::format("executable needs {} cores, the device has {}", exe.num_cores, lim.cores));
  std::set<std::pair<int, std::string>> names;
  for (const auto& t : exe.tensors) {
    const std::string where = fmt::format("tensor '{}'", t.name);
    if (t.name.empty()) throw FormatError("tensor with an empty name");
    if (!names.insert({static_cast<int>(t.kind), t.name}).second) throw FormatError(where + ": name used twice");
    if (t.core >= exe.num_cores) throw FormatError(fmt::format("{}: core {} out of range", where, t.core));
    if (exe.pipeline && t.kind == TensorKind::input && t.core != 0)
      throw FormatError(fmt::format("{}: a pipeline's inputs go to its first stage, not core {}", where, t.core));
    check_dtype(t.dtype, lim, where);
    for (int64_t d : t.shape)
      if (d <= 0) throw FormatError(fmt::format("{}: dimension {} is not positive", where, d));
    if (t.dram_offset > lim.dram_slice_bytes || t.bytes() > lim.dram_slice_bytes - t.dram_offset)
      throw FormatError(fmt::format("{}: DRAM range {:#x}+{} outside the core's slice", where, t.dram_offset, t.bytes()));
  }
  for (size_t i = 0; i < exe.constants.size(); ++i) {
    const auto& c = exe.constants[i];
    if (c.core >= exe.num_cores) throw FormatError(fmt::format("constant {}: core {} out of range", i, c.core));
    if (c.dram_offset > lim.dram_slice_bytes || c.bytes.size() > lim.dram_slice_bytes - c.dram_offset)
      throw FormatError(fmt::format("constant {}: DRAM range {:#x}+{} outside the core's {} MiB slice (model too large "
                                    "for the device?)",
                                    i, c.dram_offset, c.bytes.size(), lim.dram_slice_bytes >> 20));
  }
  for (size_t i = 0; i < exe.dma.size(); ++i) {
    const auto& d = exe.dma[i];
    const std::string where = fmt::format("dma descriptor {}", i);
    check_endpoint(d.src, lim, where + " src");
    check_endpoint(d.dst, lim, where + " dst");
  }

  // Per core and phase: how many end_of_program instructions, and whether it has streams.
  std::map<std::pair<uint32_t, Phase>, int> end_of_program;
  std::set<std::tuple<uint32_t, Phase, Engine>> seen;
  for (const auto& s : exe.streams) {
    if (s.core >= exe.num_cores) throw FormatError(fmt::format("stream for core {} out of range", s.core));
    const std::string prog = s.phase == Phase::run ? fmt::format("core {}", s.core)
                                                   : fmt::format("core {} {} program", s.core, to_string(s.phase));
    if (!exe.pipeline && s.phase != Phase::run)
      throw FormatError(prog + ": only pipeline stages have load and send programs");
    if (s.phase == Phase::send && s.core + 1 == exe.num_cores)
      throw FormatError(prog + ": the last pipeline stage has no successor to send to");
    if (!seen.insert({s.core, s.phase, s.engine}).second)
      throw FormatError(fmt::format("{} has two {} streams", prog, to_string(s.engine)));
    end_of_program.emplace(std::make_pair(s.core, s.phase), 0);
    const unsigned e = static_cast<unsigned>(s.engine);
    if (e >= static_cast<unsigned>(Engine::dma0) && e - static_cast<unsigned>(Engine::dma0) >= lim.dma_queues)
      throw FormatError(fmt::format("{}: stream for {} but the device has {} DMA queues", prog,
                                    to_string(s.engine), lim.dma_queues));
    for (size_t k = 0; k < s.instructions.size(); ++k) {
      const Instruction& ins = s.instructions[k];
      const Opcode op = opcode_of(ins);
      const std::string where = fmt::format("{} {} instruction {} ({})", prog, to_string(s.engine), k, to_string(op));
      if (!engine_allowed(op, s.engine)) throw FormatError(where + ": not allowed on this engine");
      const Header& h = header_of(ins);
      for (uint8_t sem : {h.wait0, h.wait1, h.signal})
        if (sem != kNoSemaphore && sem >= lim.semaphores)
          throw FormatError(fmt::format("{}: semaphore {} out of range ({} per core)", where, sem, lim.semaphores));
      if (std::holds_alternative<EndOfProgram>(ins)) ++end_of_program[{s.core, s.phase}];
      std::visit(OperandChecker{exe, lim, where, exe.pipeline && s.phase == Phase::send}, ins);
    }
  }
  for (uint32_t c = 0; c < exe.num_cores; ++c)
    end_of_program.emplace(std::make_pair(c, Phase::run), 0);  // every core has a run program
  for (const auto& [key, n] : end_of_program)
    if (n != 1)
      throw FormatError(key.second == Phase::run
                            ? fmt::format("core {}: {} end_of_program instructions (exactly one required)", key.first, n)
                            : fmt::format("core {} {} program: {} end_of_program instructions (exactly one required)",
                                          key.first, to_string(key.second), n));
}

}  // namespace infsim::isa

// One DMA queue of a NeuronCore: runs dma_copy instructions, each a run of
// descriptors from the executable, in order. DRAM is reached through a
// TLM-2.0 initiator socket; SBUF/PSUM directly.
//
// Timing of one descriptor: a fixed setup cost, then the queue issues the
// pieces (contiguous runs of at most dma_max_transfer_bytes) of the source at
// dma_bytes_per_cycle, and each destination piece at the same rate once the
// source data it carries has arrived. DRAM pieces take the time the DRAM
// target returns (channel bandwidth, bursts, latency); on-chip pieces take
// the SRAM latency. The descriptor completes when its last piece has.
#pragma once

#include <tlm_utils/simple_initiator_socket.h>

#include <vector>

#include "sim/core/engine.h"

namespace infsim::sim {

class DmaQueue : public EngineBase {
 public:
  tlm_utils::simple_initiator_socket<DmaQueue> socket;  // this chip's DRAM
  // Fabric addresses (isa::kFabricBase): other chips' DRAM over the links,
  // through the chip's router (a standalone chip refuses them).
  tlm_utils::simple_initiator_socket<DmaQueue> fabric;

  DmaQueue(sc_core::sc_module_name name, CoreContext& core, isa::Engine id);

 private:
  struct Piece {
    uint32_t partition;  // on-chip only
    uint64_t address;    // DRAM: absolute byte address; on-chip: byte offset in the partition
    uint64_t bytes;
  };
  Cost execute(const isa::Instruction& ins) override;
  // Moves the source pieces to the destination pieces (same element count),
  // converting dtypes; returns the completion time.
  // `dst_pieces`: the destination's pieces if known, else computed here.
  sc_core::sc_time transfer(const isa::DmaEndpoint& src, const std::vector<Piece>& src_pieces,
                            const isa::DmaEndpoint& dst, sc_core::sc_time start,
                            const std::vector<Piece>* dst_pieces = nullptr);
  // A descriptor's source and destination pieces, computed on first use and
  // kept while the core keeps the same image (they depend only on the
  // descriptor and the core's DRAM slice): a served model's requests reuse them.
  struct DescriptorPieces {
    bool known = false;
    std::vector<Piece> src, dst;
  };
  const DescriptorPieces& descriptor_pieces(uint32_t index);
  // A `next` endpoint (a pipeline stage's successor's DRAM) as the fabric
  // address the core is connected to; other endpoints as they are.
  isa::DmaEndpoint resolved(const isa::DmaEndpoint& e) const;
  // Appends the pieces of the table rows the index operand names, in order.
  void gathered_rows(const isa::DmaEndpoint& table, const isa::AccessPattern& index, std::vector<Piece>& out);
  // Appends the endpoint's pieces (merged only with each other).
  void pieces(const isa::DmaEndpoint& e, std::vector<Piece>& out) const;
  // Times every piece of the endpoint, moving its bytes between `data` and
  // the endpoint's memory unless `data` is null; returns when the last piece
  // completes, given each piece's issue time.
  sc_core::sc_time access(const isa::DmaEndpoint& e, const std::vector<Piece>& ps, bool write,
                          std::vector<sc_core::sc_time>& issue, uint8_t* data);
  // Copies the source pieces' bytes to the destination pieces' (the same
  // count, in order) memory to memory, without staging them: on-chip
  // partitions directly, DRAM pages through the DRAM's direct memory
  // interface. For endpoints in different memories, which cannot overlap.
  void copy_direct(const isa::DmaEndpoint& src_ep, const std::vector<Piece>& src, const isa::DmaEndpoint& dst_ep,
                   const std::vector<Piece>& dst);

  std::vector<DescriptorPieces> cache_;
  uint64_t cache_image_ = 0;
  uint32_t cache_core_ = 0;
  uint64_t cache_next_ = 0;
  // Reused from descriptor to descriptor, to spare allocations.
  std::vector<Piece> src_pieces_, dst_pieces_;
  std::vector<sc_core::sc_time> src_issue_, dst_issue_;
  std::vector<uint8_t> staging_, converted_;
  std::vector<float> index_;
  uint64_t& bytes_;
  uint64_t& descriptors_;
};

}  // namespace infsim::sim

// A file's new content as content ops against its base (the version journaled before), and the
// rebuild from those ops. Design: schemas/files.md, "Content" and "Chunking"; the ops are
// pb::ContentOp (schemas/replsync.proto).
//
// The primary runs a DeltaEncoder over the new content as it reads the file, with the chunk list
// of the base from its manifest; the secondary runs a DeltaDecoder over the ops of every part,
// writing the new version next to the base. Both sides use the same chunker (sync/files/chunker.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "replsync.pb.h"
#include "sync/files/chunker.h"
#include "sync/files/content_hash.h"
#include "sync/status.h"

namespace replsync {

// The manifest's chunk list (schemas/files.md, "Manifest"): for each chunk in file order, its
// length as a little-endian uint32, then its hash's high and low 64 bits, each little-endian
// (20 bytes per chunk). Offsets are not stored: they are the running sum of the lengths, as
// chunk lists from Chunker and DeltaEncoder have them.
std::string EncodeChunkList(const std::vector<ChunkInfo>& chunks);
// The inverse. Corruption when the size is not a multiple of 20 or a chunk's length is 0.
Result<std::vector<ChunkInfo>> DecodeChunkList(std::string_view encoded);

// Turns a new content, streamed in blocks, into content ops against a base: each chunk of the
// new content whose hash is among the base's chunks becomes a copy of that base chunk (copies
// that continue each other in the base merge into one op), any other chunk literal data
// (adjacent literal chunks merge into one op). The ops are handed out in batches, one per
// FileChange part, so memory stays bounded whatever the file's size.
// Thread-safety: not thread-safe.
class DeltaEncoder {
 public:
  // Receives the next batch of ops (to be journaled as one part). A non-OK Status stops the
  // encoder: Update or Finish returns it unchanged.
  using Emit = std::function<Status(std::vector<pb::ContentOp>&& ops)>;

  static constexpr size_t kDefaultPartBytes = 4 << 20;
  // What each op counts toward part_bytes besides its literal data, so that a batch of copy ops
  // alone (a file reordered, or mostly unchanged with small scattered edits) stays bounded too.
  static constexpr size_t kOpCost = 32;

  // `base_chunks`: the base's chunk list (empty when there is no base: then every op is
  // literal). `part_bytes`: a batch is emitted as soon as its literal bytes plus kOpCost per op
  // reach it, so a batch holds less than part_bytes + chunker max_size of literal data.
  explicit DeltaEncoder(std::vector<ChunkInfo> base_chunks, size_t part_bytes = kDefaultPartBytes,
                        const ChunkerParams& params = {});

  // Feeds the next `data` of the new content (blocks of any size), calling `emit` for every
  // batch that fills up. Returns emit's error, if any (the encoder must then be discarded).
  Status Update(std::string_view data, const Emit& emit);
  // Ends the content: calls `emit` exactly once more with the remaining ops (possibly none).
  // Returns emit's error, if any; Internal when called twice.
  Status Finish(const Emit& emit);

  // After Finish: the new content's chunk list (for the manifest), its SHA-256 (raw 32 bytes),
  // its size, and how many of its bytes were copied from the base or sent as literal data.
  const std::vector<ChunkInfo>& chunks() const { return chunks_; }
  const std::string& content_hash() const { return content_hash_; }
  uint64_t size() const { return size_; }
  uint64_t copied_bytes() const { return copied_bytes_; }
  uint64_t literal_bytes() const { return literal_bytes_; }

 private:
  // Turns the completed chunks from chunks_[processed_] on into ops. `data` holds the bytes fed
  // in this call; carry_ those of the first chunk that came before it.
  Status ProcessChunks(std::string_view data, size_t* data_pos, const Emit& emit);
  void AddCopy(uint64_t base_offset, uint32_t length);
  void AddLiteral(std::string_view bytes);
  Status EmitBatch(const Emit& emit);

  const std::vector<ChunkInfo> base_;
  // Hash -> index in base_ of its first chunk with that hash.
  std::unordered_map<ChunkHash, size_t> base_index_;
  // The index in base_ after the last chunk copied: tried first, so that a run of copies
  // continues in place even when the base repeats a chunk.
  size_t next_base_ = 0;
  const size_t part_bytes_;
  Chunker chunker_;
  Sha256 sha_;
  std::vector<ChunkInfo> chunks_;
  size_t processed_ = 0;            // chunks_ already turned into ops
  std::string carry_;               // bytes of the chunk in progress from earlier Update calls
  std::vector<pb::ContentOp> ops_;  // the batch being filled
  size_t batch_cost_ = 0;           // its literal bytes plus kOpCost per op
  std::string content_hash_;
  uint64_t size_ = 0;
  uint64_t copied_bytes_ = 0;
  uint64_t literal_bytes_ = 0;
  bool finished_ = false;
};

// Rebuilds a content from its ops (the secondary's side): writes each op's bytes to the output
// file in order, from offset 0, copying copy ops from the base file, and computes the SHA-256 of
// everything written, for the check against FileChange.content_hash.
// Neither descriptor is owned; both must stay open until Finish. The output should be a new,
// empty file (it is written with pwrite from offset 0 and not truncated).
// Thread-safety: not thread-safe.
class DeltaDecoder {
 public:
  // `base_fd`: the base, open for reading, or -1 when there is none.
  DeltaDecoder(int base_fd, int out_fd);

  // Appends the op's bytes to the output. Errors (the decoder must then be discarded):
  // InvalidArgument for a copy op when there is no base; Corruption when the base is shorter
  // than offset + length, or the op has both data and a copy range; IoError naming the errno
  // when reading the base or writing the output fails (callers add the paths with WithContext).
  Status Apply(const pb::ContentOp& op);
  // The SHA-256 (raw 32 bytes) of all bytes written; size() is their count.
  Result<std::string> Finish();
  uint64_t size() const { return size_; }

 private:
  Status Write(const char* data, size_t size);

  const int base_fd_;
  const int out_fd_;
  Sha256 sha_;
  uint64_t size_ = 0;
  std::string buffer_;  // copy ops' blocks, allocated on first use
  bool finished_ = false;
};

}  // namespace replsync

#include "sync/files/file_delta.h"

#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstring>
#include <limits>
#include <utility>

namespace replsync {

namespace {

constexpr size_t kChunkRecordSize = 4 + 16;
// Copy ops read the base in blocks of at most this many bytes.
constexpr size_t kCopyBlock = 1 << 20;

void PutLe(std::string* out, uint64_t value, int bytes) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((value >> (8 * i)) & 0xff));
}

uint64_t GetLe(const char* p, int bytes) {
  uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) {
    value |= static_cast<uint64_t>(static_cast<unsigned char>(p[i])) << (8 * i);
  }
  return value;
}

bool IsLiteral(const pb::ContentOp& op) { return !op.data().empty(); }

}  // namespace

std::string EncodeChunkList(const std::vector<ChunkInfo>& chunks) {
  std::string out;
  out.reserve(chunks.size() * kChunkRecordSize);
  for (const ChunkInfo& chunk : chunks) {
    PutLe(&out, chunk.length, 4);
    PutLe(&out, chunk.hash.high, 8);
    PutLe(&out, chunk.hash.low, 8);
  }
  return out;
}

Result<std::vector<ChunkInfo>> DecodeChunkList(std::string_view encoded) {
  if (encoded.size() % kChunkRecordSize != 0) {
    return Status::Corruption("chunk list of " + std::to_string(encoded.size()) +
                              " bytes is not a whole number of 20-byte chunk records");
  }
  std::vector<ChunkInfo> chunks;
  chunks.reserve(encoded.size() / kChunkRecordSize);
  uint64_t offset = 0;
  for (size_t pos = 0; pos < encoded.size(); pos += kChunkRecordSize) {
    const char* p = encoded.data() + pos;
    ChunkInfo chunk;
    chunk.offset = offset;
    chunk.length = static_cast<uint32_t>(GetLe(p, 4));
    chunk.hash.high = GetLe(p + 4, 8);
    chunk.hash.low = GetLe(p + 12, 8);
    if (chunk.length == 0) {
      return Status::Corruption("chunk list: chunk " + std::to_string(chunks.size()) +
                                " has length 0");
    }
    offset += chunk.length;
    chunks.push_back(chunk);
  }
  return chunks;
}

DeltaEncoder::DeltaEncoder(std::vector<ChunkInfo> base_chunks, size_t part_bytes,
                           const ChunkerParams& params)
    : base_(std::move(base_chunks)), part_bytes_(part_bytes), chunker_(params) {
  base_index_.reserve(base_.size());
  for (size_t i = 0; i < base_.size(); ++i) base_index_.try_emplace(base_[i].hash, i);
}

Status DeltaEncoder::Update(std::string_view data, const Emit& emit) {
  if (finished_) return Status::Internal("DeltaEncoder::Update after Finish");
  sha_.Update(data);
  size_ += data.size();
  chunker_.Update(data, &chunks_);
  size_t pos = 0;
  RS_RETURN_IF_ERROR(ProcessChunks(data, &pos, emit));
  carry_.append(data.substr(pos));
  return Status::Ok();
}

Status DeltaEncoder::Finish(const Emit& emit) {
  if (finished_) return Status::Internal("DeltaEncoder::Finish called twice");
  finished_ = true;
  chunker_.Finish(&chunks_);
  size_t pos = 0;
  RS_RETURN_IF_ERROR(ProcessChunks(std::string_view(), &pos, emit));
  content_hash_ = sha_.Final();
  return EmitBatch(emit);
}

Status DeltaEncoder::ProcessChunks(std::string_view data, size_t* data_pos, const Emit& emit) {
  while (processed_ < chunks_.size()) {
    const ChunkInfo& chunk = chunks_[processed_++];
    // The chunk's bytes: carry_ (from earlier calls), then the rest from `data`.
    assert(chunk.length >= carry_.size());
    std::string_view tail = data.substr(*data_pos, chunk.length - carry_.size());
    *data_pos += tail.size();

    size_t base = base_.size();
    if (next_base_ < base_.size() && base_[next_base_].hash == chunk.hash) {
      base = next_base_;  // prefer the continuation of the previous copy
    } else if (auto it = base_index_.find(chunk.hash); it != base_index_.end()) {
      base = it->second;
    }
    if (base < base_.size() && base_[base].length == chunk.length) {
      AddCopy(base_[base].offset, chunk.length);
      next_base_ = base + 1;
      copied_bytes_ += chunk.length;
    } else {
      AddLiteral(carry_);
      AddLiteral(tail);
      literal_bytes_ += chunk.length;
    }
    carry_.clear();
    if (batch_cost_ >= part_bytes_) RS_RETURN_IF_ERROR(EmitBatch(emit));
  }
  return Status::Ok();
}

void DeltaEncoder::AddCopy(uint64_t base_offset, uint32_t length) {
  if (!ops_.empty() && !IsLiteral(ops_.back()) &&
      ops_.back().offset() + ops_.back().length() == base_offset) {
    ops_.back().set_length(ops_.back().length() + length);
    return;
  }
  pb::ContentOp& op = ops_.emplace_back();
  op.set_offset(base_offset);
  op.set_length(length);
  batch_cost_ += kOpCost;
}

void DeltaEncoder::AddLiteral(std::string_view bytes) {
  if (bytes.empty()) return;
  if (ops_.empty() || !IsLiteral(ops_.back())) {
    ops_.emplace_back();
    batch_cost_ += kOpCost;
  }
  ops_.back().mutable_data()->append(bytes);
  batch_cost_ += bytes.size();
}

Status DeltaEncoder::EmitBatch(const Emit& emit) {
  std::vector<pb::ContentOp> batch = std::move(ops_);
  ops_.clear();
  batch_cost_ = 0;
  return emit(std::move(batch));
}

DeltaDecoder::DeltaDecoder(int base_fd, int out_fd) : base_fd_(base_fd), out_fd_(out_fd) {}

Status DeltaDecoder::Apply(const pb::ContentOp& op) {
  if (finished_) return Status::Internal("DeltaDecoder::Apply after Finish");
  if (IsLiteral(op)) {
    if (op.offset() != 0 || op.length() != 0) {
      return Status::Corruption("content op has both literal data and a copy range (offset " +
                                std::to_string(op.offset()) + ", length " +
                                std::to_string(op.length()) + ")");
    }
    return Write(op.data().data(), op.data().size());
  }
  if (op.length() == 0) return Status::Ok();
  const std::string range =
      "base bytes [" + std::to_string(op.offset()) + ", +" + std::to_string(op.length()) + ")";
  if (base_fd_ < 0) {
    return Status::InvalidArgument("copy op for " + range + " but the file has no base");
  }
  if (op.length() > std::numeric_limits<uint64_t>::max() - op.offset() ||
      op.offset() + op.length() > static_cast<uint64_t>(std::numeric_limits<off_t>::max())) {
    return Status::Corruption("copy op for " + range + " exceeds the largest file offset");
  }
  if (buffer_.empty()) buffer_.resize(kCopyBlock);
  uint64_t offset = op.offset();
  uint64_t end = op.offset() + op.length();
  while (offset < end) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(end - offset, buffer_.size()));
    ssize_t n = ::pread(base_fd_, buffer_.data(), want, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("read " + range + " at " + std::to_string(offset) + ": " +
                             std::strerror(errno));
    }
    if (n == 0) {
      return Status::Corruption("copy op for " + range + " but the base ends at " +
                                std::to_string(offset));
    }
    RS_RETURN_IF_ERROR(Write(buffer_.data(), static_cast<size_t>(n)));
    offset += static_cast<uint64_t>(n);
  }
  return Status::Ok();
}

Result<std::string> DeltaDecoder::Finish() {
  if (finished_) return Status::Internal("DeltaDecoder::Finish called twice");
  finished_ = true;
  return sha_.Final();
}

Status DeltaDecoder::Write(const char* data, size_t size) {
  sha_.Update(data, size);
  size_t done = 0;
  while (done < size) {
    ssize_t n = ::pwrite(out_fd_, data + done, size - done, static_cast<off_t>(size_ + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::IoError("write rebuilt content at " + std::to_string(size_ + done) + ": " +
                             std::strerror(errno));
    }
    if (n == 0) {
      return Status::IoError("write rebuilt content at " + std::to_string(size_ + done) +
                             ": no bytes written");
    }
    done += static_cast<size_t>(n);
  }
  size_ += size;
  return Status::Ok();
}

}  // namespace replsync

// FileBinlogSource: reads one or more binlog files in order, for replay and tests.
//
// Each file must start with the binlog magic (FE 62 69 6E); files ending in ".gz" are read
// through zlib. Reading is streamed with large read(2) calls into one buffer (256 KiB, larger
// only while an event larger than that is read); events are handed out as views into it, so every
// byte is copied once and memory stays flat however large the file is.
// Thread-safety: not thread-safe.
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "capture/binlog/binlog_source.h"

namespace replsync::capture {

class FileBinlogSource : public BinlogSource {
 public:
  // Checks that every file exists and is readable; does not read them yet.
  // Errors: InvalidArgument for an empty list, NotFound for a missing file.
  static Result<std::unique_ptr<FileBinlogSource>> Open(std::vector<std::string> paths);
  ~FileBinlogSource() override;

  Result<bool> Next(RawEvent* event) override;
  std::string Describe() const override;

  // Starts reading the first file at `offset` instead of just after the magic. Call before the
  // first Next. The offset must be the start of an event.
  void SeekFirstFile(uint64_t offset) { first_offset_ = offset; }

 private:
  class Reader;
  explicit FileBinlogSource(std::vector<std::string> paths);
  Status OpenFile(size_t index);

  std::vector<std::string> paths_;
  size_t index_ = 0;             // the file being read
  std::unique_ptr<Reader> reader_;
  std::string file_name_;        // base name of the current file, what RawEvent::file shows
  uint64_t offset_ = 0;          // offset of the next event in the current file
  uint64_t first_offset_ = 0;    // 0: start after the magic
  // Bytes read from the current file: [begin_, end_) are not handed out yet.
  std::vector<char> buffer_;
  size_t begin_ = 0;
  size_t end_ = 0;
  // Makes at least `n` unread bytes available in buffer_ (fewer only at the end of the file);
  // moves unread bytes to the front and grows the buffer as needed. Invalidates earlier views.
  Result<size_t> Fill(size_t n);
};

}  // namespace replsync::capture

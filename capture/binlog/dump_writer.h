// DumpWriter: the output of `replsync binlog dump` — decoded transactions as readable text
// (what `mysqlbinlog -v` shows), as JSON lines (one object per row change and per DDL statement,
// format in schemas/binlog_dump.md), or only counted (--decode-only, for speed measurements).
// Values are printed by ValueFormatter (value_format.h); this class owns the line layout.
// Thread-safety: not thread-safe.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>

#include "capture/binlog/transaction_assembler.h"
#include "sync/status.h"

namespace replsync::capture {

enum class DumpMode { kText, kJson, kDecodeOnly };

struct DumpWriterOptions {
  // Write after every transaction (following a live server, so output appears as it happens)
  // instead of in blocks of about 1 MiB.
  bool flush_each_transaction = false;
};

class DumpWriter {
 public:
  DumpWriter(std::FILE* out, DumpMode mode, DumpWriterOptions options = {});
  ~DumpWriter();

  // What a TransactionAssembler feeds; errors name the binlog position.
  TransactionSink* sink();
  // Notes that the input ended inside a transaction (text: a comment; JSON: nothing).
  void NoteUnfinished();
  // Writes what is buffered. IoError naming the output when the write fails.
  Status Flush();
  uint64_t row_events() const;
  uint64_t rows() const;

 private:
  class Sink;
  std::unique_ptr<Sink> sink_;
};

}  // namespace replsync::capture

// Settler: the paths the file capture will look at again, each waiting until it has settled.
//
// A path is due `quiet` after its last event; a file modified and not closed yet (a kWriting
// event) waits `open_write_quiet` instead, until a close (kClosedWrite) makes it wait `quiet`
// again. A forced path (the secondary's resync) is due at once. Flags accumulate over events:
// a path once marked deep or forced stays so until it is taken.
//
// The capture's pass over due paths (TakeDue, DropSettledBelow) goes in path order, so that a
// folder is looked at before what is in it, and resumes after the key it stopped at: a path
// marked again while the pass looks at an earlier one waits for the next pass.
// Thread-safety: not thread-safe; the capture's thread only.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "sync/clock.h"

namespace replsync::capture {

// What an event says about the writers of a file.
enum class WriteEvent : uint8_t {
  kNone,     // nothing: the path keeps what it had
  kWriting,  // modified, maybe still open for writing: wait open_write_quiet
  kClosed,   // a writer closed it: wait quiet again
};

struct MarkOptions {
  bool deep = false;   // a directory: look at everything below it
  bool force = false;  // resync: whole content, even when unchanged; due at once
  WriteEvent write = WriteEvent::kNone;
};

struct SettleTimes {
  std::chrono::milliseconds quiet{200};
  std::chrono::milliseconds open_write_quiet{10000};
};

class Settler {
 public:
  struct Waiting {
    Clock::TimePoint due;
    bool deep = false;
    bool writing = false;  // modified and not closed yet
    bool force = false;
    uint64_t size = 0;  // as of its last mark, for the status' bytes_pending
  };
  struct Taken {
    std::string path;
    Waiting waiting;
    // Where the pass goes on: the key that followed the taken path (nullopt: the end).
    std::optional<std::string> next;
  };

  // `size_of` gives a path's size as of now (0 for anything but a regular file).
  Settler(Clock& clock, SettleTimes times, std::function<uint64_t(const std::string&)> size_of);

  // The path had an event (or must be looked at again): it is due after the quiet its state asks
  // for, counted from now.
  void Mark(const std::string& path, const MarkOptions& options = {});

  // Removes and returns the first path at or after `from` (path order) that is due at `now`, or
  // any, when `all`. nullopt when there is none.
  std::optional<Taken> TakeDue(const std::string& from, Clock::TimePoint now, bool all);
  // After a deep look at `path`: removes the paths below it from `from` on, in order, while they
  // are due at `now` and neither forced nor being written (the deep look covered them). Returns
  // the key the pass goes on from (nullopt: the end).
  std::optional<std::string> DropSettledBelow(const std::string& path, const std::string& from,
                                              Clock::TimePoint now);

  // `from` and every path below it now wait under `to` (a rename inside the tree).
  void MovePrefix(const std::string& from, const std::string& to);
  void Erase(const std::string& path) { waiting_.erase(path); }
  void Clear() { waiting_.clear(); }

  // How long until the next path is due, at most `cap`, never negative.
  std::chrono::milliseconds TimeToNextDue(Clock::TimePoint now,
                                          std::chrono::milliseconds cap) const;
  bool empty() const { return waiting_.empty(); }
  size_t size() const { return waiting_.size(); }
  uint64_t bytes() const;
  const Waiting* Find(const std::string& path) const;

 private:
  Clock& clock_;
  const SettleTimes times_;
  const std::function<uint64_t(const std::string&)> size_of_;
  std::map<std::string, Waiting> waiting_;  // ordered: a folder comes before what is in it
};

}  // namespace replsync::capture

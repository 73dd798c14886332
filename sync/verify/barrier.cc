#include "sync/verify/barrier.h"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "sync/atomic_file.h"
#include "sync/text.h"

namespace replsync::verify {

namespace {

// The `key value` lines of `text` (the value is the rest of the line after the first space;
// lines without a space are ignored; a later line wins).
std::map<std::string, std::string, std::less<>> Lines(std::string_view text) {
  std::map<std::string, std::string, std::less<>> out;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 1);
    const size_t space = line.find(' ');
    if (space != std::string_view::npos) {
      out[std::string(line.substr(0, space))] = std::string(line.substr(space + 1));
    }
  }
  return out;
}

std::string Value(const std::map<std::string, std::string, std::less<>>& lines,
                  std::string_view key) {
  auto it = lines.find(key);
  return it == lines.end() ? std::string() : it->second;
}

// The text of the file at `path`; NotFound when it does not exist.
Result<std::string> ReadText(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int err = errno;
    if (err == ENOENT) return Status::NotFound(fmt::format("{} {}: no such file", what, path));
    return Status::IoError(fmt::format("read {} {}: {}", what, path, std::strerror(err)));
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string BarrierFilePath(const std::string& state_dir) { return state_dir + "/verify.barrier"; }

std::string PausedFilePath(const std::string& state_dir) { return state_dir + "/verify.paused"; }

std::string VerifyLockPath(const std::string& state_dir) { return state_dir + "/verify.lock"; }

std::string StopBefore::ToString() const {
  switch (kind) {
    case Kind::kNow:
      return "now";
    case Kind::kAll:
      return "all";
    case Kind::kPosition:
      return position.ToString();
    case Kind::kSeq:
      return fmt::format("seq:{}", seq);
  }
  return "";
}

Result<StopBefore> StopBefore::Parse(std::string_view text) {
  auto bad = [&] { return Status::InvalidArgument(fmt::format("bad stop_before '{}'", text)); };
  if (text == "now") return Now();
  if (text == "all") return All();
  if (text.starts_with("seq:")) {
    uint64_t n = 0;
    if (!ParseU64(text.substr(4), &n) || n == 0) return bad();
    return Seq(n);
  }
  Result<BinlogPosition> position = BinlogPosition::Parse(text);
  if (!position.ok()) return bad();
  return At(*std::move(position));
}

std::string VerifyBarrier::Format() const {
  return fmt::format("token {}\nstop_before {}\npid {}\n", token, stop.ToString(), pid);
}

Result<VerifyBarrier> VerifyBarrier::Parse(std::string_view text) {
  const auto lines = Lines(text);
  VerifyBarrier barrier;
  barrier.token = Value(lines, "token");
  RS_ASSIGN_OR_RETURN(barrier.stop, StopBefore::Parse(Value(lines, "stop_before")));
  // For people only: a pid that does not parse is no reason to ignore the barrier.
  if (!ParseU64(Value(lines, "pid"), &barrier.pid)) barrier.pid = 0;
  return barrier;
}

std::string PausedAt::Format() const {
  return fmt::format("token {}\nstop_before {}\napplied_seq {}\nsource {}\ngtid {}\n", token,
                     stop.ToString(), applied_seq, source, gtid);
}

Result<PausedAt> PausedAt::Parse(std::string_view text) {
  const auto lines = Lines(text);
  PausedAt paused;
  paused.token = Value(lines, "token");
  RS_ASSIGN_OR_RETURN(paused.stop, StopBefore::Parse(Value(lines, "stop_before")));
  const std::string applied = Value(lines, "applied_seq");
  if (!ParseU64(applied, &paused.applied_seq)) {
    return Status::InvalidArgument(fmt::format("bad applied_seq '{}'", applied));
  }
  paused.source = Value(lines, "source");
  paused.gtid = Value(lines, "gtid");
  return paused;
}

Status WriteBarrierFile(const std::string& path, const VerifyBarrier& barrier) {
  return WriteFileAtomically(path, barrier.Format(), "verify's barrier");
}

Status WritePausedFile(const std::string& path, const PausedAt& paused) {
  return WriteFileAtomically(path, paused.Format(), "verify's paused file");
}

Result<VerifyBarrier> ReadBarrierFile(const std::string& path) {
  RS_ASSIGN_OR_RETURN(std::string text, ReadText(path, "verify's barrier"));
  return VerifyBarrier::Parse(text);
}

Result<PausedAt> ReadPausedFile(const std::string& path) {
  RS_ASSIGN_OR_RETURN(std::string text, ReadText(path, "verify's paused file"));
  return PausedAt::Parse(text);
}

Status RemoveBarrierFile(const std::string& path) {
  if (::remove(path.c_str()) == 0 || errno == ENOENT) return Status::Ok();
  return Status::IoError(fmt::format("remove verify's barrier {}: {}", path, std::strerror(errno)));
}

}  // namespace replsync::verify

#include "capture/files/settler.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "capture/files/repo_paths.h"

namespace replsync::capture {

Settler::Settler(Clock& clock, SettleTimes times,
                 std::function<uint64_t(const std::string&)> size_of)
    : clock_(clock), times_(times), size_of_(std::move(size_of)) {}

void Settler::Mark(const std::string& path, const MarkOptions& options) {
  Waiting& w = waiting_[path];
  w.deep = w.deep || options.deep;
  w.force = w.force || options.force;
  if (options.write == WriteEvent::kWriting) w.writing = true;
  if (options.write == WriteEvent::kClosed) w.writing = false;
  const Clock::TimePoint now = clock_.Now();
  w.due = now + (w.writing ? times_.open_write_quiet : times_.quiet);
  if (options.force) w.due = now;
  if (size_of_) w.size = size_of_(path);
}

std::optional<Settler::Taken> Settler::TakeDue(const std::string& from, Clock::TimePoint now,
                                               bool all) {
  for (auto it = waiting_.lower_bound(from); it != waiting_.end(); ++it) {
    if (!all && it->second.due > now) continue;
    Taken taken{it->first, it->second, std::nullopt};
    it = waiting_.erase(it);
    if (it != waiting_.end()) taken.next = it->first;
    return taken;
  }
  return std::nullopt;
}

std::optional<std::string> Settler::DropSettledBelow(const std::string& path,
                                                     const std::string& from,
                                                     Clock::TimePoint now) {
  auto it = waiting_.lower_bound(from);
  while (it != waiting_.end() && Below(it->first, path) && !it->second.force &&
         !it->second.writing && it->second.due <= now) {
    it = waiting_.erase(it);
  }
  if (it == waiting_.end()) return std::nullopt;
  return it->first;
}

void Settler::MovePrefix(const std::string& from, const std::string& to) {
  std::vector<std::pair<std::string, Waiting>> moved;
  for (auto it = waiting_.lower_bound(from); it != waiting_.end();) {
    if (it->first == from || Below(it->first, from)) {
      moved.emplace_back(to + it->first.substr(from.size()), it->second);
      it = waiting_.erase(it);
    } else if (it->first.compare(0, from.size(), from) == 0) {
      ++it;  // a sibling with the same prefix ("a/b.txt" after "a/b")
    } else {
      break;
    }
  }
  for (auto& [path, w] : moved) waiting_[path] = w;
}

std::chrono::milliseconds Settler::TimeToNextDue(Clock::TimePoint now,
                                                 std::chrono::milliseconds cap) const {
  std::chrono::milliseconds wait = cap;
  for (const auto& [path, w] : waiting_) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(w.due - now);
    wait = std::max(std::chrono::milliseconds(0), std::min(wait, left));
  }
  return wait;
}

uint64_t Settler::bytes() const {
  uint64_t total = 0;
  for (const auto& [path, w] : waiting_) total += w.size;
  return total;
}

const Settler::Waiting* Settler::Find(const std::string& path) const {
  auto it = waiting_.find(path);
  return it == waiting_.end() ? nullptr : &it->second;
}

}  // namespace replsync::capture

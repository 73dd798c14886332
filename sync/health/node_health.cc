#include "sync/health/node_health.h"

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <string>
#include <vector>

namespace replsync::health {

namespace {

// Seconds as the bodies show them: to the millisecond.
double Millis(double seconds) { return std::round(seconds * 1000) / 1000; }

// One answer being built: the conditions that failed, then the body.
class Verdict {
 public:
  // Checks that a status exists and is fresh; false when there is none (nothing else can be
  // judged or shown).
  bool CheckStatus(const HealthInput& in, const HealthLimits& limits) {
    if (!in.status) {
      Fail("starting: the daemon's main loop has not reported yet");
      return false;
    }
    age_ = in.now - in.status->updated_at;
    if (age_ > limits.loop_timeout_seconds) {
      Fail(fmt::format(
          "the daemon's main loop last reported {:.1f} s ago (limit {:g} s): it does not run", age_,
          limits.loop_timeout_seconds));
    }
    return true;
  }
  void Fail(std::string reason) { reasons_.push_back(std::move(reason)); }
  bool ok() const { return reasons_.empty(); }

  // Starts the body: healthy, reason, and (with a status) the fields every path shows.
  rapidjson::Writer<rapidjson::StringBuffer>& Begin(const HealthInput& in) {
    std::string reason;
    for (const std::string& r : reasons_) reason += (reason.empty() ? "" : "; ") + r;
    w_.StartObject();
    w_.Key("healthy");
    w_.Bool(ok());
    Put("reason", reason);
    if (in.status) {
      const NodeStatus& s = *in.status;
      Put("node", s.name);
      Put("role", s.role);
      Put("state", s.state);
      Put("error", s.error);
      w_.Key("epoch");
      w_.Uint64(s.epoch);
      w_.Key("fenced");
      w_.Bool(s.fenced);
      w_.Key("status_age_seconds");
      w_.Double(Millis(age_));
    }
    return w_;
  }
  void Put(const char* key, const std::string& value) {
    w_.Key(key);
    w_.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  HealthAnswer End() {
    w_.EndObject();
    return {.code = ok() ? 200 : 503, .json = std::string(buf_.GetString(), buf_.GetSize())};
  }

 private:
  std::vector<std::string> reasons_;
  double age_ = 0;
  rapidjson::StringBuffer buf_;
  rapidjson::Writer<rapidjson::StringBuffer> w_{buf_};
};

}  // namespace

HealthAnswer PrimaryHealth(const HealthInput& in, const HealthLimits& limits) {
  Verdict v;
  if (!v.CheckStatus(in, limits)) {
    v.Begin(in);
    return v.End();
  }
  const NodeStatus& s = *in.status;
  if (!s.primary) {
    v.Fail(fmt::format("this node is not the primary (role {})", s.role));
  } else if (s.fenced) {
    v.Fail("this node is a fenced old primary: " + s.fenced_by);
  } else if (!in.handing_over.empty()) {
    v.Fail(in.handing_over);
  } else {
    const NodeStatus::Primary& p = *s.primary;
    if (!s.peers_asked) {
      v.Fail("the other nodes were not all asked yet whether one of them is primary");
    }
    if (p.journal.full || p.capture_state == "journal full") {
      v.Fail(fmt::format(
          "the journal is full ({} of {} bytes): capture pauses until the secondaries catch up",
          p.journal.bytes, p.journal.max_bytes));
    } else if (p.capture_state != "running") {
      v.Fail(fmt::format("capture is {}, not running{}", p.capture_state,
                         s.error.empty() ? "" : ": " + s.error));
    }
    if (s.read_only) {
      v.Fail(
          "the database is read-only (read_only=ON): the application's writes are refused; SET "
          "GLOBAL read_only = OFF there if that is not wanted");
    } else if (!s.read_only_problem.empty()) {
      v.Fail("the database's read_only is not known: " + s.read_only_problem);
    }
  }
  auto& w = v.Begin(in);
  if (s.primary) {
    const NodeStatus::Primary& p = *s.primary;
    v.Put("capture_state", p.capture_state);
    v.Put("binlog_position", p.binlog_position);
    v.Put("gtid", p.gtid);
    w.Key("lag_seconds");
    w.Int64(p.lag_seconds);
    w.Key("journal");
    w.StartObject();
    w.Key("entries");
    w.Uint64(p.journal.entries);
    w.Key("bytes");
    w.Uint64(p.journal.bytes);
    w.Key("max_bytes");
    w.Uint64(p.journal.max_bytes);
    w.Key("full");
    w.Bool(p.journal.full);
    w.EndObject();
    w.Key("peers");
    w.StartArray();
    for (const NodeStatus::Peer& peer : p.peers) {
      w.StartObject();
      v.Put("name", peer.name);
      w.Key("connected");
      w.Bool(peer.connected);
      w.Key("lag_entries");
      w.Uint64(peer.lag_entries);
      w.Key("last_seen");
      w.Double(peer.last_seen);
      w.EndObject();
    }
    w.EndArray();
  }
  return v.End();
}

namespace {

// The conditions /health/secondary and /health/ready share: a secondary (false, having failed,
// when it is not), no bootstrap under way, the applier running (`applier_says` follows its
// state in the reason), no table entering the set.
bool CheckFollowing(Verdict& v, const NodeStatus& s, std::string_view applier_says) {
  if (!s.secondary) {
    v.Fail(fmt::format("this node is not a secondary (role {})", s.role));
    return false;
  }
  const NodeStatus::Secondary& sec = *s.secondary;
  if (s.state == "bootstrapping") {
    v.Fail("a bootstrap is under way: this node's copy is not complete");
  }
  if (sec.applier_state != "applying" && sec.applier_state != "waiting") {
    v.Fail(fmt::format("the applier is {}{}{}", sec.applier_state, applier_says,
                       s.error.empty() ? "" : ": " + s.error));
  }
  if (!sec.entering.empty()) {
    std::string tables;
    for (const std::string& t : sec.entering) tables += (tables.empty() ? "" : ", ") + t;
    v.Fail("tables entering the set are not copied yet: " + tables);
  }
  return true;
}

}  // namespace

HealthAnswer SecondaryHealth(const HealthInput& in, const HealthLimits& limits) {
  Verdict v;
  if (!v.CheckStatus(in, limits)) {
    v.Begin(in);
    return v.End();
  }
  const NodeStatus& s = *in.status;
  double heard_ago = -1;
  if (CheckFollowing(v, s, ", not running")) {
    const NodeStatus::Secondary& sec = *s.secondary;
    if (sec.lag.seconds > limits.max_lag_seconds) {
      v.Fail(
          fmt::format("the lag is {:.1f} s, over {:g} s", sec.lag.seconds, limits.max_lag_seconds));
    }
    if (sec.last_heard <= 0) {
      v.Fail("the primary has not been heard from since the daemon started");
    } else {
      heard_ago = std::max(0.0, in.now - sec.last_heard);
      if (heard_ago > limits.peer_timeout_seconds) {
        v.Fail(fmt::format("the primary was last heard from {:.1f} s ago (limit {:g} s)", heard_ago,
                           limits.peer_timeout_seconds));
      }
    }
  }
  auto& w = v.Begin(in);
  if (s.secondary) {
    const NodeStatus::Secondary& sec = *s.secondary;
    v.Put("primary", sec.primary);
    v.Put("receiver_state", sec.receiver_state);
    v.Put("applier_state", sec.applier_state);
    w.Key("connected");
    w.Bool(sec.connected);
    w.Key("primary_heard_seconds_ago");
    w.Double(Millis(heard_ago));
    w.Key("received_seq");
    w.Uint64(sec.received_seq);
    w.Key("primary_last_seq");
    w.Uint64(sec.primary_last_seq);
    w.Key("applied_seq");
    w.Uint64(sec.applied_seq);
    v.Put("applied_gtid", sec.applied_gtid);
    v.Put("source_position", sec.source_position);
    w.Key("lag");
    w.StartObject();
    w.Key("transactions");
    w.Uint64(sec.lag.transactions);
    w.Key("bytes");
    w.Uint64(sec.lag.bytes);
    w.Key("seconds");
    w.Double(Millis(sec.lag.seconds));
    w.EndObject();
    w.Key("max_lag_seconds");
    w.Double(limits.max_lag_seconds);
    w.Key("peer_timeout_seconds");
    w.Double(limits.peer_timeout_seconds);
  }
  return v.End();
}

HealthAnswer ReadyHealth(const HealthInput& in, const HealthLimits& limits) {
  Verdict v;
  if (!v.CheckStatus(in, limits)) {
    v.Begin(in);
    return v.End();
  }
  const NodeStatus& s = *in.status;
  if (CheckFollowing(v, s, ": what was received cannot all be applied")) {
    const NodeStatus::Secondary& sec = *s.secondary;
    if (sec.primary_last_seq > sec.received_seq) {
      v.Fail(fmt::format(
          "the primary's journal held {} entries more than this node received when it was last "
          "heard from: promote would refuse (or lose them with --force)",
          sec.primary_last_seq - sec.received_seq));
    }
  }
  auto& w = v.Begin(in);
  if (s.secondary) {
    const NodeStatus::Secondary& sec = *s.secondary;
    v.Put("applier_state", sec.applier_state);
    w.Key("received_seq");
    w.Uint64(sec.received_seq);
    w.Key("primary_last_seq");
    w.Uint64(sec.primary_last_seq);
    w.Key("applied_seq");
    w.Uint64(sec.applied_seq);
  }
  return v.End();
}

HealthAnswer LiveHealth(const HealthInput& in, const HealthLimits& limits) {
  Verdict v;
  const bool has_status = v.CheckStatus(in, limits);
  auto& w = v.Begin(in);
  if (has_status) {
    w.Key("pid");
    w.Int64(in.status->pid);
  }
  return v.End();
}

}  // namespace replsync::health

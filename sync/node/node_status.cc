#include "sync/node/node_status.h"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <vector>

namespace replsync {

namespace {

// Writes JSON keys and values with one call per member: the layout below reads like the schema.
template <typename Writer>
class Out {
 public:
  explicit Out(Writer& w) : w_(w) {}

  void Put(const char* key, const std::string& v) {
    w_.Key(key);
    w_.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  }
  void Put(const char* key, bool v) {
    w_.Key(key);
    w_.Bool(v);
  }
  void Put(const char* key, uint32_t v) {
    w_.Key(key);
    w_.Uint(v);
  }
  void Put(const char* key, int v) {
    w_.Key(key);
    w_.Int(v);
  }
  void Put(const char* key, uint64_t v) {
    w_.Key(key);
    w_.Uint64(v);
  }
  void Put(const char* key, int64_t v) {
    w_.Key(key);
    w_.Int64(v);
  }
  void Put(const char* key, double v) {
    w_.Key(key);
    w_.Double(v);
  }
  void Begin(const char* key) {
    w_.Key(key);
    w_.StartObject();
  }
  void End() { w_.EndObject(); }

  Writer& writer() { return w_; }

 private:
  Writer& w_;
};

template <typename Writer>
void WritePrimary(Out<Writer>& o, const NodeStatus::Primary& p) {
  o.Begin("primary");
  o.Put("capture_state", p.capture_state);
  o.Put("source", p.source);
  o.Put("binlog_position", p.binlog_position);
  o.Put("read_position", p.read_position);
  o.Put("gtid", p.gtid);
  o.Put("lag_seconds", p.lag_seconds);
  o.Begin("captured");
  o.Put("transactions", p.captured.transactions);
  o.Put("skipped_transactions", p.captured.skipped_transactions);
  o.Put("rows", p.captured.rows);
  o.Put("bytes", p.captured.bytes);
  o.End();
  o.Begin("journal");
  o.Put("first_seq", p.journal.first_seq);
  o.Put("last_seq", p.journal.last_seq);
  o.Put("entries", p.journal.entries);
  o.Put("bytes", p.journal.bytes);
  o.Put("max_bytes", p.journal.max_bytes);
  o.Put("full", p.journal.full);
  o.End();
  if (p.files) {
    const NodeStatus::FileCapture& f = *p.files;
    o.Begin("files");
    o.Put("root", f.root);
    o.Put("state", f.state);
    o.Put("files_pending", f.files_pending);
    o.Put("bytes_pending", f.bytes_pending);
    o.Put("last_rescan", f.last_rescan);
    o.Put("last_rescan_reason", f.last_rescan_reason);
    o.Put("rescans", f.rescans);
    o.Put("watches", f.watches);
    o.Put("changes_journaled", f.changes_journaled);
    o.Put("literal_bytes", f.literal_bytes);
    o.Put("copied_bytes", f.copied_bytes);
    o.Put("abandoned_reads", f.abandoned_reads);
    o.Put("resyncs_requested", f.resyncs_requested);
    o.End();
  }
  o.Put("endpoint", p.endpoint);
  o.Put("entries_sent", p.entries_sent);
  o.Put("bytes_sent", p.bytes_sent);
  o.Put("bad_frames", p.bad_frames);
  o.Put("abandoned_file_parts", p.abandoned_file_parts);
  o.Put("refused_requests", p.refused_requests);
  o.Put("refused_peers", p.refused_peers);
  o.Put("last_refused_peer", p.last_refused_peer);
  o.Put("last_refused_peer_at", p.last_refused_peer_at);
  o.writer().Key("peers");
  o.writer().StartArray();
  for (const NodeStatus::Peer& peer : p.peers) {
    o.writer().StartObject();
    o.Put("name", peer.name);
    o.Put("connected", peer.connected);
    o.Put("durable_seq", peer.durable_seq);
    o.Put("applied_seq", peer.applied_seq);
    o.Put("sent_seq", peer.sent_seq);
    o.Put("lag_entries", peer.lag_entries);
    o.Put("last_seen", peer.last_seen);
    o.Put("ever_connected", peer.ever_connected);
    o.Put("last_error", peer.last_error);
    o.writer().EndObject();
  }
  o.writer().EndArray();
  if (!p.bootstrap.empty()) {
    o.writer().Key("bootstrap");
    o.writer().StartArray();
    for (const NodeStatus::Primary::BootstrapPeer& b : p.bootstrap) {
      o.writer().StartObject();
      o.Put("name", b.name);
      o.Put("rounds_open", b.rounds_open);
      o.Put("rounds_begun", b.rounds_begun);
      o.Put("chunks", b.chunks);
      o.Put("rows", b.rows);
      o.Put("bytes", b.bytes);
      o.Put("wire_bytes", b.wire_bytes);
      o.Put("last_error", b.last_error);
      o.writer().EndObject();
    }
    o.writer().EndArray();
  }
  o.End();
}

// secondary.bootstrap's members, without the braces.
template <typename Writer>
void WriteBootstrapMembers(Out<Writer>& o, const NodeStatus::Bootstrap& b) {
  o.Put("token", b.token);
  o.Put("phase", b.phase);
  o.Put("resync", b.resync);
  o.Put("start_position", b.start_position);
  o.Put("tables_total", b.tables_total);
  o.Put("tables_done", b.tables_done);
  o.Put("rows_done", b.rows_done);
  o.Put("rows_estimated", b.rows_estimated);
  o.Put("bytes_done", b.bytes_done);
  o.Put("bytes_estimated", b.bytes_estimated);
  o.Put("bytes_per_second", b.bytes_per_second);
  o.Put("eta_seconds", b.eta_seconds);
  o.Put("round", b.round);
  o.Put("snapshot_age_seconds", b.snapshot_age_seconds);
  o.Put("lock_ms", b.lock_ms);
  o.Put("files_total", b.files_total);
  o.Put("files_done", b.files_done);
  o.Put("chunks_loaded", b.chunks_loaded);
  o.Put("chunks_equal", b.chunks_equal);
  o.Put("rows_equal", b.rows_equal);
  o.writer().Key("refused");
  o.writer().StartArray();
  for (const std::string& item : b.refused) {
    o.writer().String(item.data(), static_cast<rapidjson::SizeType>(item.size()));
  }
  o.writer().EndArray();
  o.Put("error", b.error);
  o.Put("exit_code", b.exit_code);
  o.Put("started_at", b.started_at);
  o.Put("finished_at", b.finished_at);
}

template <typename Writer>
void WriteSecondary(Out<Writer>& o, const NodeStatus::Secondary& s) {
  o.Begin("secondary");
  o.Put("primary", s.primary);
  o.Put("receiver_state", s.receiver_state);
  o.Put("applier_state", s.applier_state);
  o.Put("connected", s.connected);
  o.Put("last_heard", s.last_heard);
  o.Put("received_seq", s.received_seq);
  o.Put("primary_last_seq", s.primary_last_seq);
  o.Put("applied_seq", s.applied_seq);
  o.Put("applied_gtid", s.applied_gtid);
  o.Put("source_position", s.source_position);
  o.Put("transactions_applied", s.transactions_applied);
  o.Put("rows_applied", s.rows_applied);
  o.Put("apply_workers", s.apply_workers);
  o.Put("parallel_applied", s.parallel_applied);
  o.Put("serial_fallbacks", s.serial_fallbacks);
  o.Put("waiting_for", s.waiting_for);
  o.Begin("files");
  o.Put("root", s.files.root);
  o.Put("changes_applied", s.files.changes_applied);
  o.Put("batches", s.files.batches);
  o.Put("resync_pending", s.files.resync_pending);
  o.Put("changes_refused", s.files.changes_refused);
  o.End();
  o.Begin("lag");
  o.Put("transactions", s.lag.transactions);
  o.Put("bytes", s.lag.bytes);
  o.Put("seconds", s.lag.seconds);
  o.End();
  o.Begin("relay");
  o.Put("first_seq", s.relay.first_seq);
  o.Put("last_seq", s.relay.last_seq);
  o.Put("entries", s.relay.entries);
  o.Put("bytes", s.relay.bytes);
  o.End();
  o.Put("reconnects", s.reconnects);
  o.Put("entries_refused", s.entries_refused);
  o.Put("primary_refusal", s.primary_refusal);
  if (!s.entering.empty()) {
    o.writer().Key("entering");
    o.writer().StartArray();
    for (const std::string& table : s.entering) {
      o.writer().String(table.data(), static_cast<rapidjson::SizeType>(table.size()));
    }
    o.writer().EndArray();
  }
  if (s.bootstrap) {
    o.Begin("bootstrap");
    WriteBootstrapMembers(o, *s.bootstrap);
    o.End();
  }
  o.End();
}

// The top-level members, without the braces (the report adds its own after them).
template <typename Writer>
void WriteMembers(Writer& w, const NodeStatus& s) {
  Out<Writer> o(w);
  o.Put("version", s.version);
  o.Put("role", s.role);
  o.Put("name", s.name);
  o.Put("pid", s.pid);
  o.Put("started_at", s.started_at);
  o.Put("updated_at", s.updated_at);
  o.Put("state", s.state);
  o.Put("error", s.error);
  o.Put("transport", s.transport);
  o.Put("epoch", s.epoch);
  o.Put("fenced", s.fenced);
  o.Put("fenced_by", s.fenced_by);
  o.Put("peers_asked", s.peers_asked);
  o.Put("read_only", s.read_only);
  o.Put("read_only_problem", s.read_only_problem);
  if (s.primary) WritePrimary(o, *s.primary);
  if (s.secondary) WriteSecondary(o, *s.secondary);
}

// Reads the members of one JSON object into typed fields. The first value of a wrong type is
// remembered (with its key's path) in *error; missing keys are left alone.
class In {
 public:
  In(const rapidjson::Value& object, std::string path, Status* error)
      : object_(object), path_(std::move(path)), error_(error) {}

  void Get(const char* key, std::string* out) {
    if (const rapidjson::Value* v = Find(key, "a string", &rapidjson::Value::IsString)) {
      out->assign(v->GetString(), v->GetStringLength());
    }
  }
  void Get(const char* key, bool* out) {
    if (const rapidjson::Value* v = Find(key, "true or false", &rapidjson::Value::IsBool)) {
      *out = v->GetBool();
    }
  }
  void Get(const char* key, uint32_t* out) {
    if (const rapidjson::Value* v =
            Find(key, "a small unsigned integer", &rapidjson::Value::IsUint)) {
      *out = v->GetUint();
    }
  }
  void Get(const char* key, int* out) {
    if (const rapidjson::Value* v = Find(key, "a small integer", &rapidjson::Value::IsInt)) {
      *out = v->GetInt();
    }
  }
  void Get(const char* key, uint64_t* out) {
    if (const rapidjson::Value* v = Find(key, "an unsigned integer", &rapidjson::Value::IsUint64)) {
      *out = v->GetUint64();
    }
  }
  void Get(const char* key, int64_t* out) {
    if (const rapidjson::Value* v = Find(key, "an integer", &rapidjson::Value::IsInt64)) {
      *out = v->GetInt64();
    }
  }
  void Get(const char* key, double* out) {
    if (const rapidjson::Value* v = Find(key, "a number", &rapidjson::Value::IsNumber)) {
      *out = v->GetDouble();
    }
  }
  void Get(const char* key, std::vector<std::string>* out) {
    const rapidjson::Value* v = Find(key, "an array", &rapidjson::Value::IsArray);
    if (v == nullptr) return;
    for (const rapidjson::Value& item : v->GetArray()) {
      if (!item.IsString()) {
        if (error_->ok()) {
          *error_ = Status::Corruption("status file: " + path_ + key + "[] is not a string");
        }
        return;
      }
      out->emplace_back(item.GetString(), item.GetStringLength());
    }
  }
  // The object under `key`, or nullopt when it is missing (or not an object: an error).
  std::optional<In> Object(const char* key) {
    const rapidjson::Value* v = Find(key, "an object", &rapidjson::Value::IsObject);
    if (v == nullptr) return std::nullopt;
    return In(*v, path_ + key + ".", error_);
  }
  // The objects of the array under `key` (none when it is missing).
  std::vector<In> Objects(const char* key) {
    std::vector<In> objects;
    const rapidjson::Value* v = Find(key, "an array", &rapidjson::Value::IsArray);
    if (v == nullptr) return objects;
    for (const rapidjson::Value& item : v->GetArray()) {
      if (!item.IsObject()) {
        if (error_->ok()) {
          *error_ = Status::Corruption("status file: " + path_ + key + "[] is not an object");
        }
        break;
      }
      objects.emplace_back(item, path_ + key + "[].", error_);
    }
    return objects;
  }

 private:
  const rapidjson::Value* Find(const char* key, const char* what,
                               bool (rapidjson::Value::*is)() const) {
    auto it = object_.FindMember(key);
    if (it == object_.MemberEnd() || it->value.IsNull()) return nullptr;
    if (!(it->value.*is)()) {
      if (error_->ok()) {
        *error_ = Status::Corruption("status file: " + path_ + key + " is not " + what);
      }
      return nullptr;
    }
    return &it->value;
  }

  const rapidjson::Value& object_;
  std::string path_;  // "primary.files." for primary.files's keys
  Status* error_;
};

NodeStatus::Primary ReadPrimary(In& in) {
  NodeStatus::Primary p;
  in.Get("capture_state", &p.capture_state);
  in.Get("source", &p.source);
  in.Get("binlog_position", &p.binlog_position);
  in.Get("read_position", &p.read_position);
  in.Get("gtid", &p.gtid);
  in.Get("lag_seconds", &p.lag_seconds);
  if (std::optional<In> c = in.Object("captured")) {
    c->Get("transactions", &p.captured.transactions);
    c->Get("skipped_transactions", &p.captured.skipped_transactions);
    c->Get("rows", &p.captured.rows);
    c->Get("bytes", &p.captured.bytes);
  }
  if (std::optional<In> j = in.Object("journal")) {
    j->Get("first_seq", &p.journal.first_seq);
    j->Get("last_seq", &p.journal.last_seq);
    j->Get("entries", &p.journal.entries);
    j->Get("bytes", &p.journal.bytes);
    j->Get("max_bytes", &p.journal.max_bytes);
    j->Get("full", &p.journal.full);
  }
  if (std::optional<In> f = in.Object("files")) {
    NodeStatus::FileCapture& files = p.files.emplace();
    f->Get("root", &files.root);
    f->Get("state", &files.state);
    f->Get("files_pending", &files.files_pending);
    f->Get("bytes_pending", &files.bytes_pending);
    f->Get("last_rescan", &files.last_rescan);
    f->Get("last_rescan_reason", &files.last_rescan_reason);
    f->Get("rescans", &files.rescans);
    f->Get("watches", &files.watches);
    f->Get("changes_journaled", &files.changes_journaled);
    f->Get("literal_bytes", &files.literal_bytes);
    f->Get("copied_bytes", &files.copied_bytes);
    f->Get("abandoned_reads", &files.abandoned_reads);
    f->Get("resyncs_requested", &files.resyncs_requested);
  }
  in.Get("endpoint", &p.endpoint);
  in.Get("entries_sent", &p.entries_sent);
  in.Get("bytes_sent", &p.bytes_sent);
  in.Get("bad_frames", &p.bad_frames);
  in.Get("abandoned_file_parts", &p.abandoned_file_parts);
  in.Get("refused_requests", &p.refused_requests);
  in.Get("refused_peers", &p.refused_peers);
  in.Get("last_refused_peer", &p.last_refused_peer);
  in.Get("last_refused_peer_at", &p.last_refused_peer_at);
  for (In& peer : in.Objects("peers")) {
    NodeStatus::Peer& out = p.peers.emplace_back();
    peer.Get("name", &out.name);
    peer.Get("connected", &out.connected);
    peer.Get("durable_seq", &out.durable_seq);
    peer.Get("applied_seq", &out.applied_seq);
    peer.Get("sent_seq", &out.sent_seq);
    peer.Get("lag_entries", &out.lag_entries);
    peer.Get("last_seen", &out.last_seen);
    peer.Get("ever_connected", &out.ever_connected);
    peer.Get("last_error", &out.last_error);
  }
  for (In& b : in.Objects("bootstrap")) {
    NodeStatus::Primary::BootstrapPeer& out = p.bootstrap.emplace_back();
    b.Get("name", &out.name);
    b.Get("rounds_open", &out.rounds_open);
    b.Get("rounds_begun", &out.rounds_begun);
    b.Get("chunks", &out.chunks);
    b.Get("rows", &out.rows);
    b.Get("bytes", &out.bytes);
    b.Get("wire_bytes", &out.wire_bytes);
    b.Get("last_error", &out.last_error);
  }
  return p;
}

NodeStatus::Secondary ReadSecondary(In& in) {
  NodeStatus::Secondary s;
  in.Get("primary", &s.primary);
  in.Get("receiver_state", &s.receiver_state);
  in.Get("applier_state", &s.applier_state);
  in.Get("connected", &s.connected);
  in.Get("last_heard", &s.last_heard);
  in.Get("received_seq", &s.received_seq);
  in.Get("primary_last_seq", &s.primary_last_seq);
  in.Get("applied_seq", &s.applied_seq);
  in.Get("applied_gtid", &s.applied_gtid);
  in.Get("source_position", &s.source_position);
  in.Get("transactions_applied", &s.transactions_applied);
  in.Get("rows_applied", &s.rows_applied);
  in.Get("apply_workers", &s.apply_workers);
  in.Get("parallel_applied", &s.parallel_applied);
  in.Get("serial_fallbacks", &s.serial_fallbacks);
  in.Get("waiting_for", &s.waiting_for);
  if (std::optional<In> f = in.Object("files")) {
    f->Get("root", &s.files.root);
    f->Get("changes_applied", &s.files.changes_applied);
    f->Get("batches", &s.files.batches);
    f->Get("resync_pending", &s.files.resync_pending);
    f->Get("changes_refused", &s.files.changes_refused);
  }
  if (std::optional<In> lag = in.Object("lag")) {
    lag->Get("transactions", &s.lag.transactions);
    lag->Get("bytes", &s.lag.bytes);
    lag->Get("seconds", &s.lag.seconds);
  }
  if (std::optional<In> relay = in.Object("relay")) {
    relay->Get("first_seq", &s.relay.first_seq);
    relay->Get("last_seq", &s.relay.last_seq);
    relay->Get("entries", &s.relay.entries);
    relay->Get("bytes", &s.relay.bytes);
  }
  in.Get("reconnects", &s.reconnects);
  in.Get("entries_refused", &s.entries_refused);
  in.Get("primary_refusal", &s.primary_refusal);
  in.Get("entering", &s.entering);
  if (std::optional<In> b = in.Object("bootstrap")) {
    NodeStatus::Bootstrap& out = s.bootstrap.emplace();
    b->Get("token", &out.token);
    b->Get("phase", &out.phase);
    b->Get("resync", &out.resync);
    b->Get("start_position", &out.start_position);
    b->Get("tables_total", &out.tables_total);
    b->Get("tables_done", &out.tables_done);
    b->Get("rows_done", &out.rows_done);
    b->Get("rows_estimated", &out.rows_estimated);
    b->Get("bytes_done", &out.bytes_done);
    b->Get("bytes_estimated", &out.bytes_estimated);
    b->Get("bytes_per_second", &out.bytes_per_second);
    b->Get("eta_seconds", &out.eta_seconds);
    b->Get("round", &out.round);
    b->Get("snapshot_age_seconds", &out.snapshot_age_seconds);
    b->Get("lock_ms", &out.lock_ms);
    b->Get("files_total", &out.files_total);
    b->Get("files_done", &out.files_done);
    b->Get("chunks_loaded", &out.chunks_loaded);
    b->Get("chunks_equal", &out.chunks_equal);
    b->Get("rows_equal", &out.rows_equal);
    b->Get("refused", &out.refused);
    b->Get("error", &out.error);
    b->Get("exit_code", &out.exit_code);
    b->Get("started_at", &out.started_at);
    b->Get("finished_at", &out.finished_at);
  }
  return s;
}

}  // namespace

std::string NodeStatus::Bootstrap::ToJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  Out<rapidjson::Writer<rapidjson::StringBuffer>> o(w);
  w.StartObject();
  WriteBootstrapMembers(o, *this);
  w.EndObject();
  return buf.GetString();
}

std::string NodeStatus::ToJson() const {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  WriteMembers(w, *this);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

Result<NodeStatus> NodeStatus::Parse(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsObject()) {
    return Status::Corruption("status file: not a JSON object");
  }
  Status error;
  In in(doc, "", &error);
  NodeStatus s;
  in.Get("version", &s.version);
  in.Get("role", &s.role);
  in.Get("name", &s.name);
  in.Get("pid", &s.pid);
  in.Get("started_at", &s.started_at);
  in.Get("updated_at", &s.updated_at);
  in.Get("state", &s.state);
  in.Get("error", &s.error);
  in.Get("transport", &s.transport);
  in.Get("epoch", &s.epoch);
  in.Get("fenced", &s.fenced);
  in.Get("fenced_by", &s.fenced_by);
  in.Get("peers_asked", &s.peers_asked);
  in.Get("read_only", &s.read_only);
  in.Get("read_only_problem", &s.read_only_problem);
  if (std::optional<In> p = in.Object("primary")) s.primary = ReadPrimary(*p);
  if (std::optional<In> sec = in.Object("secondary")) s.secondary = ReadSecondary(*sec);
  if (!error.ok()) return error;
  return s;
}

std::string StatusReportJson(const NodeStatus& status, std::string_view last_verify_json,
                             bool running, double status_age_seconds) {
  rapidjson::StringBuffer buf;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(buf);
  w.SetIndent(' ', 2);
  w.StartObject();
  WriteMembers(w, status);
  rapidjson::Document verify;
  verify.Parse(last_verify_json.data(), last_verify_json.size());
  if (!last_verify_json.empty() && !verify.HasParseError() && verify.IsObject()) {
    w.Key("last_verify");
    verify.Accept(w);
  }
  w.Key("running");
  w.Bool(running);
  w.Key("status_age_seconds");
  w.Double(status_age_seconds);
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace replsync

#include "sync/verify/verify_progress.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "sync/atomic_file.h"
#include "sync/text.h"

namespace replsync::verify {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void String(Writer& w, const std::string& s) {
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
}

void Strings(Writer& w, const char* key, const std::vector<std::string>& values) {
  w.Key(key);
  w.StartArray();
  for (const auto& v : values) String(w, v);
  w.EndArray();
}

// The fields of a (partial) result that a resumed run needs.
void WriteResult(Writer& w, const VerifyProgress::TableName& name, const TableVerifyResult& r) {
  w.Key("db");
  String(w, name.first);
  w.Key("table");
  String(w, name.second);
  w.Key("fingerprint");
  String(w, r.fingerprint);
  w.Key("status");
  String(w, r.status);
  w.Key("rows");
  w.Uint64(r.rows);
  w.Key("missing_rows");
  w.Uint64(r.missing_rows);
  w.Key("extra_rows");
  w.Uint64(r.extra_rows);
  w.Key("changed_rows");
  w.Uint64(r.changed_rows);
  Strings(w, "sample_keys", r.sample_keys);
  w.Key("error");
  String(w, r.error);
}

bool ReadStrings(const rapidjson::Value& object, const char* key, std::vector<std::string>* out) {
  if (!object.HasMember(key) || !object[key].IsArray()) return false;
  for (const auto& v : object[key].GetArray()) {
    if (!v.IsString()) return false;
    out->emplace_back(v.GetString(), v.GetStringLength());
  }
  return true;
}

bool ReadResult(const rapidjson::Value& v, VerifyProgress::TableName* name, TableVerifyResult* r) {
  if (!v.IsObject()) return false;
  for (const char* key : {"db", "table", "fingerprint", "status", "error"}) {
    if (!v.HasMember(key) || !v[key].IsString()) return false;
  }
  for (const char* key : {"rows", "missing_rows", "extra_rows", "changed_rows"}) {
    if (!v.HasMember(key) || !v[key].IsUint64()) return false;
  }
  name->first = v["db"].GetString();
  name->second = v["table"].GetString();
  r->db = name->first;
  r->table = name->second;
  r->fingerprint = v["fingerprint"].GetString();
  r->status = v["status"].GetString();
  r->error = v["error"].GetString();
  r->rows = v["rows"].GetUint64();
  r->missing_rows = v["missing_rows"].GetUint64();
  r->extra_rows = v["extra_rows"].GetUint64();
  r->changed_rows = v["changed_rows"].GetUint64();
  return ReadStrings(v, "sample_keys", &r->sample_keys);
}

std::optional<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Keeps the progress file: what the loop finished, written atomically.
class ProgressKeeper {
 public:
  ProgressKeeper(std::string path, Clock& clock) : path_(std::move(path)), clock_(clock) {}

  bool enabled() const { return !path_.empty(); }
  VerifyProgress& progress() { return progress_; }

  // Writes the file now (`force`) or when the last write is a second old.
  void Save(bool force) {
    if (!enabled()) return;
    const Clock::TimePoint now = clock_.Now();
    if (!force && now - last_write_ < std::chrono::seconds(1)) return;
    last_write_ = now;
    Status st = WriteFileAtomically(path_, progress_.Serialize(), "verify's progress file");
    if (!st.ok() && !warned_) {
      warned_ = true;
      std::fprintf(stderr, "replsync verify: warning: %s (a --resume would start over)\n",
                   st.message().c_str());
    }
  }

  void Remove() {
    if (!enabled()) return;
    std::error_code ec;
    std::filesystem::remove(path_, ec);
  }

 private:
  std::string path_;
  Clock& clock_;
  VerifyProgress progress_;
  Clock::TimePoint last_write_{};
  bool warned_ = false;
};

}  // namespace

std::string VerifyProgress::Serialize() const {
  rapidjson::StringBuffer buf;
  Writer w(buf);
  w.StartObject();
  w.Key("version");
  w.Uint(1);
  w.Key("finished");
  w.StartArray();
  for (const auto& [name, result] : finished) {
    w.StartObject();
    WriteResult(w, name, result);
    w.EndObject();
  }
  w.EndArray();
  w.Key("current");
  if (current) {
    w.StartObject();
    WriteResult(w, *current, current_so_far);
    Strings(w, "after", current_after);
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize()) + "\n";
}

Result<VerifyProgress> VerifyProgress::Parse(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse(text.c_str(), text.size());
  auto corrupt = [](const std::string& why) {
    return Status::Corruption("verify's progress file: " + why);
  };
  if (doc.HasParseError() || !doc.IsObject()) return corrupt("not a JSON object");
  if (!doc.HasMember("version") || !doc["version"].IsUint() || doc["version"].GetUint() != 1) {
    return corrupt("not version 1");
  }
  VerifyProgress p;
  if (!doc.HasMember("finished") || !doc["finished"].IsArray()) return corrupt("no finished list");
  for (const auto& v : doc["finished"].GetArray()) {
    TableName name;
    TableVerifyResult r;
    if (!ReadResult(v, &name, &r)) return corrupt("a finished table is malformed");
    p.finished[name] = std::move(r);
  }
  if (doc.HasMember("current") && !doc["current"].IsNull()) {
    TableName name;
    if (!ReadResult(doc["current"], &name, &p.current_so_far) ||
        !ReadStrings(doc["current"], "after", &p.current_after)) {
      return corrupt("the current table is malformed");
    }
    p.current = name;
  }
  return p;
}

void TableRunOptionsFromEnvironment(TableRunOptions* options) {
  if (const char* stop = std::getenv("REPLSYNC_VERIFY_STOP_AFTER_CHUNKS")) {
    if (!ParseU64(stop, &options->stop_after_chunks)) options->stop_after_chunks = 0;
  }
}

std::vector<TableVerifyResult> VerifyTablesWithProgress(ConsistentPoint& point,
                                                        const TableRunOptions& options) {
  const bool show = options.show_progress;
  auto clear_line = [&] {
    if (show) std::fprintf(stderr, "\r\033[K");
  };

  ProgressKeeper keeper(options.progress_path, *options.clock);
  VerifyProgress earlier;
  if (options.resume && keeper.enabled()) {
    std::optional<std::string> text = ReadWholeFile(options.progress_path);
    if (!text) {
      std::fprintf(stderr,
                   "replsync verify: --resume: no interrupted verify recorded (%s); verifying "
                   "everything\n",
                   options.progress_path.c_str());
    } else if (Result<VerifyProgress> parsed = VerifyProgress::Parse(*text); !parsed.ok()) {
      std::fprintf(stderr, "replsync verify: --resume: %s; verifying everything\n",
                   parsed.status().message().c_str());
    } else {
      earlier = std::move(parsed).value();
    }
  }
  keeper.Save(true);  // a run without --resume starts over: the old progress is gone

  RunningThrottle throttle(options.throttle,
                           {{"primary", point.primary.get()}, {"secondary", point.secondary.get()}},
                           *options.clock);
  std::vector<TableVerifyResult> results;
  uint64_t chunks = 0;
  size_t done = 0;
  for (const auto& [db, table] : point.tables) {
    ++done;
    const VerifyProgress::TableName name(db, table);
    const std::string qualified = db + "." + table;
    auto line = [&](const std::string& extra) {
      if (!show) return;
      std::fprintf(stderr, "\r[%zu/%zu] %s ...%s\033[K", done, point.tables.size(),
                   qualified.c_str(), extra.c_str());
    };
    line("");

    // What the interrupted run recorded for this table.
    TableResumePoint resume;
    bool have_resume = false;
    if (auto it = earlier.finished.find(name); it != earlier.finished.end()) {
      resume.fingerprint = it->second.fingerprint;
      resume.finished = true;
      resume.so_far = std::make_shared<TableVerifyResult>(it->second);
      have_resume = true;
    } else if (earlier.current == name) {
      resume.fingerprint = earlier.current_so_far.fingerprint;
      resume.after = earlier.current_after;
      resume.so_far = std::make_shared<TableVerifyResult>(earlier.current_so_far);
      have_resume = true;
    }

    TableVerifyOptions topts = options.table;
    topts.clock = options.clock;
    topts.resume = have_resume ? &resume : nullptr;
    topts.before_chunk = [&]() -> Status {
      return throttle.Wait(qualified, [&](const std::string& why) { line(" waiting, " + why); });
    };
    topts.chunk_done = [&](const std::vector<std::string>& bound, const TableVerifyResult& so_far) {
      ++chunks;
      if (keeper.enabled() && !bound.empty()) {
        VerifyProgress& p = keeper.progress();
        p.current = name;
        p.current_after = bound;
        p.current_so_far = so_far;
        p.current_so_far.status = "partial";
      }
      const bool stop = options.stop_after_chunks > 0 && chunks >= options.stop_after_chunks;
      keeper.Save(stop);
      if (stop) {
        clear_line();
        std::fprintf(stderr, "replsync verify: stopping after %llu chunks (test hook)\n",
                     static_cast<unsigned long long>(chunks));
        std::fflush(stderr);
        std::_Exit(3);
      }
    };

    Result<TableVerifyResult> r =
        VerifyTable(point.primary.get(), point.secondary.get(), db, table, topts);
    TableVerifyResult result;
    if (r.ok()) {
      result = std::move(r).value();
    } else {
      result.db = db;
      result.table = table;
      result.status = "unverified";
      result.error = r.status().message();
    }
    if (result.resumed == "finished") {
      clear_line();
      std::fprintf(stderr, "replsync verify: %s: %s, %llu rows (from the interrupted run)\n",
                   qualified.c_str(), result.status.c_str(),
                   static_cast<unsigned long long>(result.rows));
    } else if (result.resumed == "continued") {
      clear_line();
      std::fprintf(stderr, "replsync verify: %s: continued after the interrupted run's %llu rows\n",
                   qualified.c_str(), static_cast<unsigned long long>(resume.so_far->rows));
    }
    if (keeper.enabled()) {
      VerifyProgress& p = keeper.progress();
      if (p.current == name) p.current.reset();
      // Only real comparisons are kept: an unverified table is compared again by --resume.
      if (result.status == "equal" || result.status == "differs") {
        TableVerifyResult kept = result;
        kept.differences = {};
        p.finished[name] = std::move(kept);
      }
      keeper.Save(true);
    }
    results.push_back(std::move(result));
  }
  clear_line();
  keeper.Remove();
  return results;
}

}  // namespace replsync::verify

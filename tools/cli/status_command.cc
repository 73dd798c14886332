#include "tools/cli/status_command.h"

#include <fmt/format.h>
#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <ctime>
#include <fstream>
#include <iterator>

#include "sync/config.h"
#include "sync/node/status_file.h"

namespace replsync::cli {


namespace {

using rapidjson::Value;

const Value* Member(const Value& obj, const char* name) {
  if (!obj.IsObject()) return nullptr;
  auto it = obj.FindMember(name);
  return it == obj.MemberEnd() ? nullptr : &it->value;
}

std::string Text(const Value& obj, const char* name, const char* fallback = "-") {
  const Value* v = Member(obj, name);
  if (!v || v->IsNull()) return fallback;
  if (v->IsString()) return v->GetString();
  if (v->IsBool()) return v->GetBool() ? "yes" : "no";
  if (v->IsUint64()) return std::to_string(v->GetUint64());
  if (v->IsInt64()) return std::to_string(v->GetInt64());
  if (v->IsNumber()) return fmt::format("{:.1f}", v->GetDouble());
  return fallback;
}

std::string Bytes(const Value& obj, const char* name) {
  const Value* v = Member(obj, name);
  if (!v || !v->IsNumber()) return "-";
  double b = v->GetDouble();
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) {
    b /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", static_cast<uint64_t>(b))
                : fmt::format("{:.1f} {}", b, units[u]);
}

// Seconds from the time `at` (seconds since the epoch) to now; -1 when `at` is not a number.
double SecondsSince(const Value* at) {
  if (at == nullptr || !at->IsNumber()) return -1;
  timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  return static_cast<double>(now.tv_sec) + now.tv_nsec / 1e9 - at->GetDouble();
}

std::string Duration(double seconds) {
  if (seconds < 0) return "-";
  auto s = static_cast<uint64_t>(seconds);
  if (s < 120) return fmt::format("{:.1f} s", seconds);
  if (s < 7200) return fmt::format("{} min {} s", s / 60, s % 60);
  if (s < 172800) return fmt::format("{} h {} min", s / 3600, s / 60 % 60);
  return fmt::format("{} d {} h", s / 86400, s / 3600 % 24);
}

void PrintHuman(const Value& doc, bool running, double age, std::FILE* out) {
  std::string role = Text(doc, "role");
  std::fprintf(out, "replsyncd %s: %s (pid %s, status written %s ago)\n", role.c_str(),
               running ? "running" : "NOT RUNNING (stale status)", Text(doc, "pid").c_str(),
               Duration(age).c_str());
  std::string state = Text(doc, "state");
  std::fprintf(out, "  state        %s\n", state.c_str());
  if (const Value* err = Member(doc, "error"); err && err->IsString() && err->GetStringLength()) {
    std::fprintf(out, "  error        %s\n", err->GetString());
  }
  if (const Value* p = Member(doc, "primary")) {
    std::fprintf(out, "  binlog       %s  gtid %s\n", Text(*p, "binlog_position").c_str(),
                 Text(*p, "gtid").c_str());
    if (const Value* c = Member(*p, "captured")) {
      std::fprintf(out, "  captured     %s transactions, %s rows; %s behind the server\n",
                   Text(*c, "transactions").c_str(), Text(*c, "rows").c_str(),
                   Duration(Member(*p, "lag_seconds") && (*p)["lag_seconds"].IsNumber()
                                ? (*p)["lag_seconds"].GetDouble()
                                : -1)
                       .c_str());
    }
    if (const Value* j = Member(*p, "journal")) {
      std::fprintf(out, "  journal      seq %s..%s, %s entries, %s (cap %s)%s\n",
                   Text(*j, "first_seq").c_str(), Text(*j, "last_seq").c_str(),
                   Text(*j, "entries").c_str(), Bytes(*j, "bytes").c_str(),
                   Bytes(*j, "max_bytes").c_str(),
                   Member(*j, "full") && (*j)["full"].IsTrue() ? "  FULL: capture paused" : "");
    }
    if (const Value* f = Member(*p, "files")) {
      std::fprintf(out,
                   "  files        %s %s: %s changes journaled (%s as data, %s copied), %s "
                   "pending (%s)\n",
                   Text(*f, "state").c_str(), Text(*f, "root").c_str(),
                   Text(*f, "changes_journaled").c_str(), Bytes(*f, "literal_bytes").c_str(),
                   Bytes(*f, "copied_bytes").c_str(), Text(*f, "files_pending").c_str(),
                   Bytes(*f, "bytes_pending").c_str());
      std::fprintf(out, "  rescan       %s rescans, last %s ago (%s); %s watches\n",
                   Text(*f, "rescans").c_str(),
                   Duration(Member(*f, "last_rescan") && (*f)["last_rescan"].IsNumber() &&
                                    (*f)["last_rescan"].GetInt64() > 0
                                ? std::time(nullptr) - (*f)["last_rescan"].GetInt64()
                                : -1)
                       .c_str(),
                   Text(*f, "last_rescan_reason").c_str(), Text(*f, "watches").c_str());
    }
    if (const Value* peers = Member(*p, "peers"); peers && peers->IsArray()) {
      if (peers->Empty()) std::fprintf(out, "  secondaries  none connected yet\n");
      for (const auto& peer : peers->GetArray()) {
        std::fprintf(
            out, "  secondary    %s: %s, received %s, applied %s, behind %s entries\n",
            Text(peer, "name").c_str(),
            Member(peer, "connected") && peer["connected"].IsTrue() ? "connected" : "disconnected",
            Text(peer, "durable_seq").c_str(), Text(peer, "applied_seq").c_str(),
            Text(peer, "lag_entries").c_str());
      }
    }
  }
  if (const Value* s = Member(doc, "secondary")) {
    std::fprintf(
        out, "  primary      %s: %s\n", Text(*s, "primary").c_str(),
        Member(*s, "connected") && (*s)["connected"].IsTrue() ? "connected" : "disconnected");
    std::fprintf(out, "  received     seq %s (primary at %s)\n", Text(*s, "received_seq").c_str(),
                 Text(*s, "primary_last_seq").c_str());
    std::fprintf(out, "  applied      seq %s  gtid %s  source %s\n",
                 Text(*s, "applied_seq").c_str(), Text(*s, "applied_gtid").c_str(),
                 Text(*s, "source_position").c_str());
    if (Member(*s, "apply_workers")) {
      std::fprintf(out,
                   "  apply        %s workers; %s transactions (%s by workers), %s rows; %s "
                   "serial fallbacks\n",
                   Text(*s, "apply_workers").c_str(), Text(*s, "transactions_applied").c_str(),
                   Text(*s, "parallel_applied").c_str(), Text(*s, "rows_applied").c_str(),
                   Text(*s, "serial_fallbacks").c_str());
    }
    if (const Value* f = Member(*s, "files")) {
      std::fprintf(out,
                   "  files        %s: %s changes applied in %s batches; %s paths wait for a "
                   "whole copy\n",
                   Text(*f, "root").c_str(), Text(*f, "changes_applied").c_str(),
                   Text(*f, "batches").c_str(), Text(*f, "resync_pending").c_str());
    }
    if (const Value* lag = Member(*s, "lag")) {
      double secs = Member(*lag, "seconds") && (*lag)["seconds"].IsNumber()
                        ? (*lag)["seconds"].GetDouble()
                        : -1;
      std::fprintf(out, "  lag          %s transactions, %s, %s\n",
                   Text(*lag, "transactions").c_str(), Bytes(*lag, "bytes").c_str(),
                   Duration(secs).c_str());
    }
    if (const Value* relay = Member(*s, "relay")) {
      std::fprintf(out, "  relay        %s entries, %s\n", Text(*relay, "entries").c_str(),
                   Bytes(*relay, "bytes").c_str());
    }
  }
  if (const Value* v = Member(doc, "last_verify"); v && v->IsObject()) {
    const double ago = SecondsSince(Member(*v, "at"));
    const Value* code = Member(*v, "exit_code");
    const int exit_code = code && code->IsInt() ? code->GetInt() : 2;
    std::string what;
    if (exit_code == 0) {
      what = "consistent";
    } else if (exit_code == 1) {
      what = fmt::format("differences: {} tables, {} paths", Text(*v, "tables_differing"),
                         Text(*v, "paths_differing"));
    } else {
      what = "could not verify: " + Text(*v, "error");
    }
    const Value* took = Member(*v, "seconds");
    std::fprintf(out, "  last verify  %s ago (%s, took %s): %s\n", Duration(ago).c_str(),
                 Text(*v, "what").c_str(),
                 Duration(took && took->IsNumber() ? took->GetDouble() : -1).c_str(),
                 what.c_str());
  }
}

}  // namespace

int RunStatus(const std::string& config_path, bool json, std::FILE* out) {
  auto config = NodeConfig::Load(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "replsync status: %s\n", config.status().message().c_str());
    return 2;
  }
  auto text = ReadStatusFile(config->node.state_dir);
  if (!text.ok()) {
    std::fprintf(stderr, "replsync status: %s\n", text.status().message().c_str());
    return 2;
  }
  rapidjson::Document doc;
  doc.Parse(text->c_str(), text->size());
  if (doc.HasParseError() || !doc.IsObject()) {
    std::fprintf(stderr, "replsync status: %s is not valid JSON (is it being written?)\n",
                 StatusFilePath(config->node.state_dir).c_str());
    return 2;
  }
  const double age = SecondsSince(Member(doc, "updated_at"));
  // replsyncd holds its lock for as long as it runs (a pid could have been reused).
  bool running = ReplsyncdRunning(config->node.state_dir) && age >= 0 && age < 10;
  // The last `replsync verify` on this node (state_dir/verify.last), when there was one.
  {
    std::ifstream in(config->node.state_dir + "/verify.last");
    const std::string last((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    rapidjson::Document verify;
    verify.Parse(last.c_str(), last.size());
    if (!last.empty() && !verify.HasParseError() && verify.IsObject()) {
      Value copy(verify, doc.GetAllocator());
      doc.AddMember("last_verify", copy, doc.GetAllocator());
    }
  }
  if (json) {
    doc.AddMember("running", running, doc.GetAllocator());
    doc.AddMember("status_age_seconds", age, doc.GetAllocator());
    rapidjson::StringBuffer buf;
    rapidjson::PrettyWriter<rapidjson::StringBuffer> writer(buf);
    writer.SetIndent(' ', 2);
    doc.Accept(writer);
    std::fprintf(out, "%s\n", buf.GetString());
  } else {
    PrintHuman(doc, running, age, out);
  }
  return running ? 0 : 1;
}

}  // namespace replsync::cli

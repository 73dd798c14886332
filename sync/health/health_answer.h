// HealthQuery and HealthAnswer: what a path of the health endpoint is asked and what it answers
// (sync/health/health_server.h serves them; schemas/health.md has the bodies), and the checks of
// query parameters that the paths share.
// Thread-safety: value types and pure functions.
#pragma once

#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync::health {

// One request to a path: GET or HEAD (the server answers every other method itself).
struct HealthQuery {
  std::string path = {};  // "/health/secondary", decoded, without the query
  // The query's parameters, decoded, in the order given; a name given twice is there twice.
  std::multimap<std::string, std::string> params = {};
};

// A path's answer. The server sends `json` as the body of a GET (Content-Type application/json)
// and only the headers for a HEAD. A path answers 200 (fit) or 503 (not fit), or 400 for a
// malformed request; the server turns any other code into 503.
struct HealthAnswer {
  int code = 503;
  std::string json = {};
  bool operator==(const HealthAnswer&) const = default;
};

// {"healthy":false,"reason":REASON}: what the server answers itself (unknown path, method,
// a provider that failed) and what a path answers to a malformed request.
std::string ReasonJson(std::string_view reason);
HealthAnswer ReasonAnswer(int code, std::string_view reason);

// InvalidArgument naming the first parameter of `query` that is not in `known`, or that is
// given more than once ("unknown parameter max_lag (known: max_lag_seconds)").
Status CheckParams(const HealthQuery& query, std::initializer_list<std::string_view> known);

// The parameter `name` as a number of seconds: digits with an optional fraction ("10", "2.5"),
// 0..86400. nullopt when absent; InvalidArgument naming the parameter and the value otherwise.
Result<std::optional<double>> SecondsParam(const HealthQuery& query, std::string_view name);

}  // namespace replsync::health

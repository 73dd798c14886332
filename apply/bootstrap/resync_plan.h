// What `replsync bootstrap --resync` does to the secondary's definitions at round 0
// (schemas/bootstrap.md, "Resync"): nothing is dropped wholesale; the secondary's tables are
// held against the primary's definitions at P_0:
//   - a table the primary has and the secondary lacks is created (from round 0's definition);
//   - a table whose definition differs (SHOW CREATE TABLE text, normalised: the AUTO_INCREMENT
//     counter is no part of the definition) is dropped and created again, and so copied whole;
//   - a table (or a database) of the replicated set that the primary does not have is dropped;
//   - every other table is kept, and its chunks are compared instead of copied.
// The plan is made here, without a server; the bootstrapper carries it out (and logs it).
//
// Thread-safety: plain functions.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace replsync::apply {

// "db.table" -> its SHOW CREATE TABLE (SHOW CREATE SEQUENCE) text.
using TableDefinitions = std::map<std::pair<std::string, std::string>, std::string>;

struct ResyncPlan {
  std::vector<std::pair<std::string, std::string>> drop;      // only on the secondary
  std::vector<std::pair<std::string, std::string>> recreate;  // definitions differ
  std::vector<std::pair<std::string, std::string>> create;    // only on the primary
  std::vector<std::pair<std::string, std::string>> keep;      // compared chunk by chunk
  std::vector<std::string> drop_databases;                    // only on the secondary
};

// A CREATE TABLE text as compared: without its AUTO_INCREMENT=<n> table option.
std::string NormalizeCreateTable(std::string_view create);

// The database a SHOW CREATE DATABASE text names ("CREATE DATABASE `a``b` ..." -> "a`b");
// nullopt when it names none.
std::optional<std::string> DatabaseOfCreate(std::string_view create_database);

// The plan for the primary's tables and databases (`primary`, `primary_databases`) against the
// secondary's (`secondary`, `secondary_databases`), all of the replicated set. Each list in
// name order.
ResyncPlan PlanResync(const TableDefinitions& primary,
                      const std::vector<std::string>& primary_databases,
                      const TableDefinitions& secondary,
                      const std::vector<std::string>& secondary_databases);

}  // namespace replsync::apply

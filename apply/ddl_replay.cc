#include "apply/ddl_replay.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <vector>

#include "sync/mysql/mysql_session.h"

namespace replsync::apply {
namespace {

// The upper-cased words of a statement, skipping quoted identifiers, string literals and
// comments; the contents of executable comments (/*!50001 ... */, /*M!100100 ... */) count as
// text, as the server reads them.
std::vector<std::string> Words(std::string_view sql) {
  std::vector<std::string> words;
  size_t i = 0;
  const size_t n = sql.size();
  while (i < n) {
    const char c = sql[i];
    if (c == '`' || c == '\'' || c == '"') {
      const char quote = c;
      for (++i; i < n; ++i) {
        if (sql[i] == '\\' && quote != '`') {
          ++i;
        } else if (sql[i] == quote) {
          if (i + 1 < n && sql[i + 1] == quote) {
            ++i;
          } else {
            break;
          }
        }
      }
      ++i;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      if (i + 2 < n &&
          (sql[i + 2] == '!' || (sql[i + 2] == 'M' && i + 3 < n && sql[i + 3] == '!'))) {
        i += sql[i + 2] == '!' ? 3 : 4;
        while (i < n && std::isdigit(static_cast<unsigned char>(sql[i]))) ++i;
      } else {
        const size_t end = sql.find("*/", i + 2);
        i = end == std::string_view::npos ? n : end + 2;
      }
    } else if (c == '*' && i + 1 < n && sql[i + 1] == '/') {
      i += 2;  // the end of an executable comment
    } else if ((c == '-' && i + 2 < n && sql[i + 1] == '-' &&
                std::isspace(static_cast<unsigned char>(sql[i + 2]))) ||
               c == '#') {
      const size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? n : end + 1;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::string word;
      while (i < n &&
             (std::isalnum(static_cast<unsigned char>(sql[i])) || sql[i] == '_' || sql[i] == '$')) {
        word.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(sql[i]))));
        ++i;
      }
      words.push_back(std::move(word));
    } else {
      ++i;
    }
  }
  return words;
}

bool IsObjectWord(const std::string& w) {
  static const char* const kObjects[] = {"DATABASE", "SCHEMA",    "TABLE",    "INDEX", "VIEW",
                                         "TRIGGER",  "PROCEDURE", "FUNCTION", "EVENT", "SEQUENCE"};
  return std::any_of(std::begin(kObjects), std::end(kObjects),
                     [&](const char* o) { return w == o; });
}

bool Contains(const std::vector<std::string>& words, std::string_view w) {
  return std::find(words.begin(), words.end(), w) != words.end();
}

bool In(int code, std::initializer_list<int> codes) {
  return std::find(codes.begin(), codes.end(), code) != codes.end();
}

}  // namespace

std::string DdlSessionSql(const pb::SessionVars& vars, bool mariadb) {
  std::vector<std::string> sets;
  if (vars.has_sql_mode()) sets.push_back(fmt::format("sql_mode={}", vars.sql_mode()));
  if (vars.has_flags2()) {
    const uint32_t f = vars.flags2();
    sets.push_back(
        fmt::format("foreign_key_checks={}", (f & kOptionNoForeignKeyChecks) != 0 ? 0 : 1));
    sets.push_back(fmt::format("unique_checks={}", (f & kOptionRelaxedUniqueChecks) != 0 ? 0 : 1));
    sets.push_back(fmt::format("sql_auto_is_null={}", (f & kOptionAutoIsNull) != 0 ? 1 : 0));
    if (mariadb) {
      sets.push_back(fmt::format("check_constraint_checks={}",
                                 (f & kOptionNoCheckConstraintChecks) != 0 ? 0 : 1));
    }
  }
  if (vars.has_charset_client()) {
    sets.push_back(fmt::format("character_set_client={}", vars.charset_client()));
  }
  if (vars.has_collation_connection()) {
    sets.push_back(fmt::format("collation_connection={}", vars.collation_connection()));
  }
  if (vars.has_collation_server()) {
    sets.push_back(fmt::format("collation_server={}", vars.collation_server()));
  }
  if (vars.has_time_zone()) sets.push_back("time_zone=" + QuoteString(vars.time_zone()));
  if (vars.has_lc_time_names()) {
    sets.push_back(fmt::format("lc_time_names={}", vars.lc_time_names()));
  }
  if (vars.has_auto_increment_increment()) {
    sets.push_back(fmt::format("auto_increment_increment={}", vars.auto_increment_increment()));
  }
  if (vars.has_auto_increment_offset()) {
    sets.push_back(fmt::format("auto_increment_offset={}", vars.auto_increment_offset()));
  }
  if (vars.has_explicit_defaults_for_timestamp()) {
    sets.push_back(
        fmt::format("explicit_defaults_for_timestamp={}", vars.explicit_defaults_for_timestamp()));
  }
  if (vars.has_default_collation_for_utf8mb4() && !mariadb) {
    sets.push_back(
        fmt::format("default_collation_for_utf8mb4={}", vars.default_collation_for_utf8mb4()));
  }
  if (vars.has_timestamp()) {
    sets.push_back(fmt::format("timestamp={}.{:06}", vars.timestamp(),
                               vars.has_microseconds() ? vars.microseconds() : 0));
  }
  if (sets.empty()) return "";
  std::string sql = "SET SESSION ";
  for (size_t i = 0; i < sets.size(); ++i) {
    if (i > 0) sql += ", ";
    sql += sets[i];
  }
  return sql;
}

std::string BaseSessionSql() {
  return "SET SESSION sql_mode='', time_zone='+00:00', character_set_client=utf8mb4, "
         "character_set_results=utf8mb4, collation_connection=utf8mb4_general_ci";
}

std::string ResetSessionSql(bool mariadb) {
  std::string sql =
      "SET SESSION foreign_key_checks=DEFAULT, unique_checks=DEFAULT, sql_auto_is_null=DEFAULT, "
      "collation_server=DEFAULT, lc_time_names=DEFAULT, auto_increment_increment=DEFAULT, "
      "auto_increment_offset=DEFAULT, explicit_defaults_for_timestamp=DEFAULT, "
      "timestamp=DEFAULT, sql_mode='', time_zone='+00:00', character_set_client=utf8mb4, "
      "collation_connection=utf8mb4_general_ci";
  if (mariadb) {
    sql += ", check_constraint_checks=DEFAULT";
  } else {
    sql += ", default_collation_for_utf8mb4=DEFAULT";
  }
  return sql;
}

bool IsAlreadyAppliedError(std::string_view sql, int code) {
  const std::vector<std::string> words = Words(sql);
  if (words.empty()) return false;
  const std::string& verb = words[0];
  std::string object;
  for (size_t i = 1; i < words.size(); ++i) {
    if (IsObjectWord(words[i])) {
      object = words[i];
      break;
    }
  }
  if (verb == "CREATE") {
    if (object == "DATABASE" || object == "SCHEMA") return code == 1007;
    if (object == "TABLE" || object == "VIEW" || object == "SEQUENCE") return code == 1050;
    if (object == "INDEX") return code == 1061;
    if (object == "TRIGGER") return code == 1359;
    if (object == "PROCEDURE" || object == "FUNCTION") return code == 1304;
    if (object == "EVENT") return code == 1537;
    return false;
  }
  if (verb == "DROP") {
    if (object == "DATABASE" || object == "SCHEMA") return code == 1008;
    if (object == "TABLE") return code == 1051;
    if (object == "VIEW") return In(code, {1051, 4092});
    if (object == "SEQUENCE") return In(code, {1051, 4091});
    if (object == "INDEX") return code == 1091;
    if (object == "TRIGGER") return code == 1360;
    if (object == "PROCEDURE" || object == "FUNCTION") return code == 1305;
    if (object == "EVENT") return code == 1539;
    return false;
  }
  if (verb == "ALTER" && object == "TABLE") {
    // Duplicate column / key / primary key / constraint / partition, or a column, key or
    // partition to drop that is gone.
    if (In(code, {1060, 1061, 1068, 1091, 1826, 1517, 1507})) return true;
    // Renames: the old name is gone (table 1146, column 1054, index 1176), the new one exists.
    if (Contains(words, "RENAME") && In(code, {1050, 1146, 1054, 1176})) return true;
    if (Contains(words, "CHANGE") && code == 1054) return true;
    return false;
  }
  if (verb == "RENAME" && object == "TABLE") return In(code, {1050, 1146});
  return false;
}

}  // namespace replsync::apply

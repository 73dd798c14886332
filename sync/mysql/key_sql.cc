#include "sync/mysql/key_sql.h"

#include <initializer_list>

namespace replsync {
namespace {

bool In(std::string_view value, std::initializer_list<std::string_view> set) {
  for (std::string_view v : set) {
    if (value == v) return true;
  }
  return false;
}

}  // namespace

KeyLiteralKind KeyLiteralKindOf(std::string_view t, std::string_view charset) {
  if (In(t, {"enum", "set", "bit"})) return KeyLiteralKind::kOrdinal;
  if (t == "float") return KeyLiteralKind::kFloat;
  if (In(t, {"tinyint", "smallint", "mediumint", "int", "bigint", "decimal", "double", "year"})) {
    return KeyLiteralKind::kNumber;
  }
  if (In(t, {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"})) {
    return KeyLiteralKind::kBinary;
  }
  if (charset == "binary") return KeyLiteralKind::kBinary;
  if (!charset.empty()) return KeyLiteralKind::kString;
  return KeyLiteralKind::kText;
}

std::string KeyBoundCondition(const std::vector<std::string>& columns,
                              const std::vector<std::string>& key, bool greater) {
  const std::string strict = greater ? " > " : " < ";
  const std::string last = greater ? " > " : " <= ";
  std::string expr = columns.back() + last + key.back();
  for (size_t i = columns.size() - 1; i-- > 0;) {
    expr = "(" + columns[i] + strict + key[i] + " OR (" + columns[i] + " = " + key[i] + " AND " +
           expr + "))";
  }
  if (columns.size() > 1) {
    expr = columns[0] + (greater ? " >= " : " <= ") + key[0] + " AND " + expr;
  }
  return expr;
}

}  // namespace replsync

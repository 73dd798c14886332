#include "sync/bootstrap/key_range.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "sync/mysql/key_sql.h"
#include "sync/mysql/mysql_session.h"
#include "sync/text.h"

namespace replsync::bootstrap {
namespace {

std::vector<std::string> Quoted(const std::vector<std::string>& names) {
  std::vector<std::string> quoted;
  quoted.reserve(names.size());
  for (const std::string& n : names) quoted.push_back(QuoteIdentifier(n));
  return quoted;
}

}  // namespace

std::string KeyRangePredicate(const std::vector<std::string>& key_columns,
                              const std::vector<std::string>& lower,
                              const std::vector<std::string>& upper) {
  const std::vector<std::string> columns = Quoted(key_columns);
  std::string predicate;
  if (!lower.empty()) predicate = KeyBoundCondition(columns, lower, /*greater=*/true);
  if (!upper.empty()) {
    predicate +=
        (predicate.empty() ? "" : " AND ") + KeyBoundCondition(columns, upper, /*greater=*/false);
  }
  return predicate;
}

std::string KeyRangeWhere(const std::vector<std::string>& key_columns,
                          const std::vector<std::string>& lower,
                          const std::vector<std::string>& upper) {
  std::string predicate = KeyRangePredicate(key_columns, lower, upper);
  return predicate.empty() ? "" : " WHERE " + predicate;
}

std::string KeyOrder(const std::vector<std::string>& key_columns) {
  std::string order;
  for (const std::string& name : key_columns) {
    if (!order.empty()) order += ", ";
    order += QuoteIdentifier(name);
  }
  return order;
}

std::string KeyLiteral(const Column& column, const char* value, size_t length) {
  const std::string_view bytes(value, length);
  switch (KeyLiteralKindOf(column.data_type, column.charset)) {
    case KeyLiteralKind::kString:
      return "_" + column.charset + " X'" + HexOf(bytes) + "'";
    case KeyLiteralKind::kBinary:
      return "X'" + HexOf(bytes) + "'";
    case KeyLiteralKind::kText:
      // The sessions run SET NAMES binary, where a plain '..' is a binary string: INET6 and
      // UUID would read it as their binary form. The introducer makes it text for every type.
      return "_utf8mb4 " + QuoteString(bytes);
    case KeyLiteralKind::kNumber:
    case KeyLiteralKind::kFloat:    // selected as DOUBLE
    case KeyLiteralKind::kOrdinal:  // selected as its number
      break;
  }
  return std::string(bytes);
}

Result<std::vector<size_t>> KeyPositions(const std::vector<Column>& columns,
                                         const std::vector<std::string>& key_columns) {
  std::vector<size_t> positions;
  for (const std::string& name : key_columns) {
    size_t found = columns.size();
    for (size_t i = 0; i < columns.size(); ++i) {
      if (columns[i].name == name) found = i;
    }
    if (found == columns.size()) {
      return Status::InvalidArgument("key column " + QuoteIdentifier(name) +
                                     " is not among the chunk's columns");
    }
    positions.push_back(found);
  }
  return positions;
}

std::string BoundToJson(const std::vector<std::string>& literals) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartArray();
  for (const std::string& l : literals) {
    writer.String(l.data(), static_cast<rapidjson::SizeType>(l.size()));
  }
  writer.EndArray();
  return std::string(buffer.GetString(), buffer.GetSize());
}

Result<std::vector<std::string>> BoundFromJson(std::string_view json) {
  rapidjson::Document doc;
  doc.Parse(json.data(), json.size());
  if (doc.HasParseError() || !doc.IsArray()) {
    return Status::Corruption("a key bound is not a JSON array: " +
                              std::string(json.substr(0, 200)));
  }
  std::vector<std::string> literals;
  for (const auto& v : doc.GetArray()) {
    if (!v.IsString()) {
      return Status::Corruption("a key bound holds a non-string: " +
                                std::string(json.substr(0, 200)));
    }
    literals.emplace_back(v.GetString(), v.GetStringLength());
  }
  return literals;
}

std::string DescribeBound(const std::vector<std::string>& literals, bool upper) {
  if (literals.empty()) return upper ? "(+infinity)" : "(-infinity)";
  std::string text = "(";
  for (size_t i = 0; i < literals.size(); ++i) {
    if (i > 0) text += ", ";
    text += literals[i];
  }
  return text + ")";
}

}  // namespace replsync::bootstrap

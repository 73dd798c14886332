#include "sync/mysql/row_encoding.h"

#include "sync/mysql/mysql_session.h"

namespace replsync {

std::string ColumnEncodingSql(std::string_view name, std::string_view data_type) {
  std::string v = QuoteIdentifier(name);
  if (data_type == "float") v = "(" + v + " + 0e0)";
  const std::string b = "CAST(" + v + " AS BINARY)";
  std::string body;
  if (data_type == "mediumblob" || data_type == "longblob" || data_type == "mediumtext" ||
      data_type == "longtext" || data_type == "json") {
    body = "CONCAT(LENGTH(" + b + "), '#', SHA2(" + b + ", 256))";
  } else {
    body = "CONCAT(LENGTH(" + b + "), ':', " + b + ")";
  }
  return "IF(" + v + " IS NULL, '~', " + body + ")";
}

std::string RowEncodingSql(const std::vector<EncodedColumn>& columns) {
  std::string encoding;
  for (const EncodedColumn& c : columns) {
    encoding += (encoding.empty() ? "" : ", ") + ColumnEncodingSql(c.name, c.data_type);
  }
  return encoding.empty() ? "" : "CONCAT(" + encoding + ")";
}

}  // namespace replsync

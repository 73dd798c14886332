#include "sync/bootstrap/row_format.h"

#include <algorithm>
#include <cctype>

namespace replsync::bootstrap {
namespace {

std::string Lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return text;
}

}  // namespace

Result<std::vector<Column>> ReadColumns(SqlSession& session, const std::string& db,
                                        const std::string& table) {
  RS_ASSIGN_OR_RETURN(
      auto rows,
      session.Query("SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, IFNULL(CHARACTER_SET_NAME, ''), "
                    "IS_GENERATED, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = " +
                        QuoteString(db) + " AND TABLE_NAME = " + QuoteString(table) +
                        " ORDER BY ORDINAL_POSITION",
                    "read the columns of " + QuoteIdentifier(db) + "." + QuoteIdentifier(table)));
  if (rows.empty()) {
    return Status::NotFound(QuoteIdentifier(db) + "." + QuoteIdentifier(table) + " on " +
                            session.Describe() + " has no columns (no such table)");
  }
  std::vector<Column> columns;
  columns.reserve(rows.size());
  for (const auto& row : rows) {
    Column c;
    c.name = row[0].value_or("");
    c.data_type = Lower(row[1].value_or(""));
    c.column_type = row[2].value_or("");
    c.charset = row[3].value_or("");
    // IS_GENERATED is ALWAYS for VIRTUAL and PERSISTENT (STORED) columns; EXTRA says so too.
    c.generated = row[4].value_or("") == "ALWAYS" ||
                  row[5].value_or("").find("GENERATED") != std::string::npos;
    columns.push_back(std::move(c));
  }
  return columns;
}

std::vector<Column> StoredColumns(const std::vector<Column>& columns) {
  std::vector<Column> stored;
  for (const Column& c : columns) {
    if (!c.generated) stored.push_back(c);
  }
  return stored;
}

bool LoadedAsNumber(const Column& column) {
  const std::string& t = column.data_type;
  return t == "bit" || t == "enum" || t == "set";
}

bool TextWithoutCharset(const Column& column) {
  const std::string& t = column.data_type;
  return t == "inet4" || t == "inet6" || t == "uuid";
}

std::string SelectList(const std::vector<Column>& columns) {
  std::string list;
  for (const Column& c : columns) {
    if (c.generated) continue;
    const std::string id = QuoteIdentifier(c.name);
    std::string expr;
    if (c.data_type == "float") {
      // The server prints a FLOAT with 6 significant digits; the DOUBLE of the same value prints
      // as the shortest text that reads back as that DOUBLE, hence as that FLOAT.
      expr = "CAST(" + id + " AS DOUBLE)";
    } else if (LoadedAsNumber(c)) {
      expr = id + " + 0";
    } else {
      // Under SET NAMES binary every other value arrives as its bytes: strings unconverted,
      // numbers and temporal values as text (TIMESTAMP in the session's UTC), spatial values in
      // the server's internal form (SRID + WKB), which LOAD DATA ... CHARACTER SET binary takes.
      expr = id;
    }
    if (!list.empty()) list += ", ";
    list += expr;
  }
  return list;
}

void AppendRow(const char* const* values, const unsigned long* lengths, size_t count,
               std::string* out) {
  for (size_t i = 0; i < count; ++i) {
    if (i > 0) out->push_back('\t');
    if (values[i] == nullptr) {
      out->append("\\N");
      continue;
    }
    const char* p = values[i];
    const char* end = p + lengths[i];
    while (p < end) {
      // Copy the run that needs no escape in one go.
      const char* run = p;
      while (p < end && *p != '\\' && *p != '\t' && *p != '\n') ++p;
      out->append(run, static_cast<size_t>(p - run));
      if (p == end) break;
      out->push_back('\\');
      out->push_back(*p == '\\' ? '\\' : (*p == '\t' ? 't' : 'n'));
      ++p;
    }
  }
  out->push_back('\n');
}

std::string LoadDataStatement(const std::string& db, const std::string& table,
                              const std::vector<Column>& columns, std::string_view infile) {
  std::string targets, sets;
  size_t variable = 0;
  for (const Column& c : columns) {
    if (c.generated) continue;
    if (!targets.empty()) targets += ", ";
    if (LoadedAsNumber(c) || TextWithoutCharset(c)) {
      const std::string var = "@v" + std::to_string(++variable);
      targets += var;
      // An integer stored into BIT sets its bits, into ENUM its index, into SET its member
      // bits; ascii text into INET6 or UUID is parsed as text. NULL stays NULL.
      sets += (sets.empty() ? " SET " : ", ") + QuoteIdentifier(c.name) + " = " +
              (LoadedAsNumber(c) ? "CAST(" + var + " AS UNSIGNED)"
                                 : "CONVERT(" + var + " USING ascii)");
    } else {
      targets += QuoteIdentifier(c.name);
    }
  }
  return "LOAD DATA LOCAL INFILE " + QuoteString(infile) + " INTO TABLE " + QuoteIdentifier(db) +
         "." + QuoteIdentifier(table) +
         " CHARACTER SET binary FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY "
         "'\\n' (" +
         targets + ")" + sets;
}

}  // namespace replsync::bootstrap

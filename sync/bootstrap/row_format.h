// The row format of a bootstrap chunk (schemas/bootstrap.md, "The row format of a chunk"): the one
// place that knows, per column type, the expression the primary selects a value with, how it is
// written into the chunk's LOAD DATA text, and how the secondary's `LOAD DATA LOCAL` takes it
// back, so that every value round-trips exactly.
//
// Both sides' sessions run `SET NAMES binary` and `time_zone = '+00:00'`. A value is its bytes
// with `\`, TAB and LF escaped as `\\`, `\t`, `\n`; NULL is `\N`; fields end with TAB, rows
// with LF. FLOAT is selected as DOUBLE, BIT, ENUM and SET as their number (loaded through a
// variable, CAST AS UNSIGNED), INET4, INET6 and UUID as their text (loaded through a variable
// converted to ascii: a binary string is their binary form), spatial values as their internal
// bytes; generated columns are neither selected nor loaded; invisible columns are named like the
// others.
//
// Thread-safety: plain functions and values.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "sync/mysql/mysql_session.h"
#include "sync/status.h"

namespace replsync::bootstrap {

// A column of a table as the chunk format handles it (information_schema.COLUMNS).
struct Column {
  std::string name;
  std::string data_type;    // DATA_TYPE, lower case: "int", "float", "bit", "point"
  std::string column_type;  // COLUMN_TYPE: "float(7,3) unsigned", "enum('a','b')"
  bool generated = false;   // VIRTUAL or STORED generated: never selected nor loaded
  std::string charset;      // CHARACTER_SET_NAME; "" for non-character types (key literals)
  bool operator==(const Column& other) const = default;
};

// The columns of `db`.`table`, in ORDINAL_POSITION order (generated ones included, marked).
// Errors: the session's; NotFound when the table has no columns (it does not exist).
Result<std::vector<Column>> ReadColumns(SqlSession& session, const std::string& db,
                                        const std::string& table);

// The stored (non-generated) columns, in order: what a chunk carries.
std::vector<Column> StoredColumns(const std::vector<Column>& columns);

// The SELECT list the primary reads a chunk with, over StoredColumns: "`id`, CAST(`f` AS
// DOUBLE), `b` + 0, ...". ENUM and SET are selected as their number too (`e` + 0, loaded through
// a variable like BIT): their key order is their number's, so a key literal of them is the
// number (sync/bootstrap/key_range.h), and a number cannot be mistaken for a member's name.
std::string SelectList(const std::vector<Column>& columns);

// True when a column's value travels as its number and is loaded through a variable (BIT, ENUM,
// SET).
bool LoadedAsNumber(const Column& column);

// True for the types whose text has no character set (INET4, INET6, UUID): the server reads a
// *binary* string stored into them as their 16-byte (4-byte) form, so their text is loaded
// through a variable converted to ascii, and their key literals carry an introducer.
bool TextWithoutCharset(const Column& column);

// Appends one row of a streamed result (values[i] == nullptr for NULL) to `out` as a line of the
// chunk's LOAD DATA text.
void AppendRow(const char* const* values, const unsigned long* lengths, size_t count,
               std::string* out);

// The secondary's statement that loads a chunk of `columns` (StoredColumns of the primary's
// table, in the chunk's order) into `db`.`table`: `LOAD DATA LOCAL INFILE '<infile>' INTO TABLE
// ... CHARACTER SET binary FIELDS TERMINATED BY '\t' ESCAPED BY '\\' LINES TERMINATED BY '\n'
// (`a`, @v1, ...) SET `bits` = CAST(@v1 AS UNSIGNED), `ip` = CONVERT(@v2 USING ascii), ...`.
std::string LoadDataStatement(const std::string& db, const std::string& table,
                              const std::vector<Column>& columns, std::string_view infile);

}  // namespace replsync::bootstrap

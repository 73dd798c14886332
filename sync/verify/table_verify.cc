#include "sync/verify/table_verify.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cstdio>
#include <future>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "sync/mysql/key_sql.h"
#include "sync/mysql/row_encoding.h"
#include "sync/verify/usable_key.h"

namespace replsync::verify {
namespace {

struct Column {
  std::string name;
  std::string column_type;  // "varchar(10)", "int(10) unsigned"
  std::string data_type;    // "varchar", "int"
  std::string charset;      // "" for non-character types
  std::string collation;
  bool nullable = false;
  bool virtual_generated = false;
  bool generated = false;  // VIRTUAL or STORED

  // One line naming everything about the column that must match on both servers.
  std::string Describe() const {
    std::string d = QuoteIdentifier(name) + " " + column_type;
    if (!charset.empty()) d += " " + collation;
    if (!nullable) d += " not null";
    if (virtual_generated) d += " virtual";
    return d;
  }
};

struct TableDef {
  std::string table_type;       // "" when the table does not exist
  std::vector<Column> columns;  // every column, in ORDINAL_POSITION order
  std::string key_name;         // "" when there is no usable key
  std::vector<size_t> key;      // indexes into `columns`
  // InnoDB and not partitioned: a range of the primary key is read in key order.
  bool clustered_by_key = false;

  // Everything compared between the servers, one column per line.
  std::string Describe() const {
    std::string d = table_type + "\n";
    for (const Column& c : columns) d += c.Describe() + "\n";
    return d + DescribeKey();
  }

  std::string DescribeKey() const {
    if (key_name.empty()) return "no usable key";
    std::string d = QuoteIdentifier(key_name) + "(";
    for (size_t i = 0; i < key.size(); ++i) {
      if (i > 0) d += ",";
      d += QuoteIdentifier(columns[key[i]].name);
    }
    return d + ")";
  }
};

// A key as SQL literals, one per key column.
using Key = std::vector<std::string>;

// The key range (lower, upper]; a missing bound is infinite.
struct Range {
  std::optional<Key> lower;
  std::optional<Key> upper;
};

// A summary of a set of rows that cannot cancel out (see the header). Keyed ranges: the SHA-256
// of the rows' encodings in key order; tables without a key: the sums of two 60-bit slices of the
// row hashes (an order-free aggregate).
struct Summary {
  uint64_t count = 0;
  uint64_t hashed = 0;  // rows whose encoding is not NULL (it is when over max_allowed_packet)
  std::string digest;
  std::string sum_high = "0", sum_low = "0";
  // False when the server cut the concatenation short (group_concat_max_len / max_allowed_packet)
  // or warned otherwise: the digest then says nothing, and the summary equals no other.
  bool exact = true;

  bool operator==(const Summary& o) const {
    return exact && o.exact && count == o.count && digest == o.digest && sum_high == o.sum_high &&
           sum_low == o.sum_low;
  }
};

uint64_t ParseCount(const std::optional<std::string>& text) {
  uint64_t value = 0;
  if (text.has_value()) std::from_chars(text->data(), text->data() + text->size(), value);
  return value;
}

// 64-bit FNV-1a of `text` as 16 hex digits: a stable name for a table's definitions.
std::string Fingerprint(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  char hex[17];
  std::snprintf(hex, sizeof(hex), "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

// How a key column's value is fetched, written back as an SQL literal and shown in a sample key.
KeyLiteralKind KindOf(const Column& c) { return KeyLiteralKindOf(c.data_type, c.charset); }

class Verifier {
 public:
  Verifier(MysqlSession* primary, MysqlSession* secondary, const std::string& db,
           const std::string& table, const TableVerifyOptions& options)
      : primary_(primary),
        secondary_(secondary),
        options_(options),
        qualified_(QuoteIdentifier(db) + "." + QuoteIdentifier(table)) {
    result_.db = db;
    result_.table = table;
    bisect_rows_ = std::max<size_t>(options.bisect_rows, 1);
  }

  Result<TableVerifyResult> Run();

 private:
  std::string What(MysqlSession* side) const {
    return std::string("verify ") + qualified_ +
           (side == primary_ ? " on the primary" : " on the secondary");
  }
  Result<std::vector<MysqlSession::Row>> Query(MysqlSession* side, const std::string& sql) {
    return side->Query(sql, What(side));
  }

  Result<TableDef> ReadDefinition(MysqlSession* side);
  // "" when the definitions match, else the first mismatch.
  static std::string DefinitionMismatch(const TableDef& p, const TableDef& s);
  Result<uint64_t> CountRows(MysqlSession* side);

  std::string Where(const Range& range) const;
  std::string KeyOrder() const;
  std::string KeyLiteralColumns() const;
  Key KeyFromRow(const MysqlSession::Row& row) const;
  std::string DisplayKey(const MysqlSession::Row& row) const;
  // The SQL predicate selecting the row of this key ("`id` = 5").
  std::string KeyPredicate(const Key& key) const;

  Result<Summary> Summarize(MysqlSession* side, const Range& range);
  // Both sides' summaries of `range`, computed at the same time (the secondary's on a second
  // thread: the two servers work in parallel).
  Status SummarizeBoth(const Range& range, Summary* p, Summary* s);
  using Rows = std::vector<MysqlSession::Row>;
  // Runs `sql` on both servers at once and hands each side's rows to `take` (primary first);
  // `exact` is false when the server warned (a concatenation cut short).
  Status QueryBoth(
      const std::string& sql,
      const std::function<void(MysqlSession* side, const Rows& rows, bool exact)>& take);
  // The key of the row at `offset` (0-based) in key order inside `range`; nullopt past the end.
  Result<std::optional<Key>> KeyAt(MysqlSession* side, const Range& range, uint64_t offset);
  Status VerifyKeyed();
  Status BisectRange(const Range& range, Summary p, Summary s);
  Status CompareRows(const Range& range);
  Status VerifyMultiset();

  void AddSample(std::string key) {
    if (result_.sample_keys.size() < options_.max_sample_keys) {
      result_.sample_keys.push_back(std::move(key));
    }
  }
  // Lists a differing row in result_.differences (TableVerifyOptions::collect_keys).
  void Collect(std::vector<std::string> TableDifferences::*list, std::string key) {
    if (!options_.collect_keys) return;
    TableDifferences& d = result_.differences;
    if (d.missing.size() + d.extra.size() + d.changed.size() >= options_.max_collected_keys) {
      d.complete = false;
      return;
    }
    (d.*list).push_back(std::move(key));
  }
  // Records a row hash that could not be computed; the table is then unverified.
  bool CheckHashed(const Summary& s) {
    if (s.count == s.hashed) return true;
    MarkEncodingOverflow();
    return false;
  }
  void MarkEncodingOverflow() {
    unverified_ =
        "a row hash is NULL (a row's encoding exceeds max_allowed_packet); raise "
        "max_allowed_packet";
  }

  MysqlSession* primary_;
  MysqlSession* secondary_;
  const TableVerifyOptions& options_;
  std::string qualified_;  // `db`.`table`
  size_t bisect_rows_;
  TableDef def_;
  std::string row_encoding_;  // SQL expression of a row's encoding
  std::string row_hash_;      // SQL expression of the row hash: SHA2(row_encoding_, 256)
  // How a keyed range is read so that GROUP_CONCAT sees its rows in key order: FORCE INDEX of the
  // key, and " ORDER BY key" inside GROUP_CONCAT unless the scan itself is in key order.
  std::string index_hint_, stream_order_;
  uint64_t max_packet_ = std::numeric_limits<uint64_t>::max();  // the sessions' lower value
  // options_.resume when it applies (the definitions still have its fingerprint), else null.
  const TableResumePoint* resume_ = nullptr;
  std::string unverified_;
  TableVerifyResult result_;
};

Result<TableDef> Verifier::ReadDefinition(MysqlSession* side) {
  TableDef def;
  std::string where = "TABLE_SCHEMA = " + QuoteString(result_.db) +
                      " AND TABLE_NAME = " + QuoteString(result_.table);
  RS_ASSIGN_OR_RETURN(auto tables, Query(side,
                                         "SELECT TABLE_TYPE, ENGINE, CREATE_OPTIONS FROM "
                                         "information_schema.TABLES WHERE " +
                                             where));
  if (tables.empty()) return def;
  def.table_type = tables[0][0].value_or("");
  def.clustered_by_key = tables[0][1].value_or("") == "InnoDB" &&
                         tables[0][2].value_or("").find("partitioned") == std::string::npos;

  RS_ASSIGN_OR_RETURN(
      auto columns,
      Query(side,
            "SELECT COLUMN_NAME, COLUMN_TYPE, DATA_TYPE, IFNULL(CHARACTER_SET_NAME, ''), "
            "IFNULL(COLLATION_NAME, ''), IS_NULLABLE, EXTRA, IS_GENERATED "
            "FROM information_schema.COLUMNS WHERE " +
                where + " ORDER BY ORDINAL_POSITION"));
  for (const auto& row : columns) {
    Column c;
    c.name = row[0].value_or("");
    c.column_type = row[1].value_or("");
    c.data_type = row[2].value_or("");
    std::transform(c.data_type.begin(), c.data_type.end(), c.data_type.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    c.charset = row[3].value_or("");
    c.collation = row[4].value_or("");
    c.nullable = row[5].value_or("") == "YES";
    c.generated = row[7].value_or("") == "ALWAYS" ||
                  row[6].value_or("").find("GENERATED") != std::string::npos;
    c.virtual_generated =
        row[7].value_or("") == "ALWAYS" && row[6].value_or("").find("VIRTUAL") != std::string::npos;
    def.columns.push_back(std::move(c));
  }

  RS_ASSIGN_OR_RETURN(auto stats, Query(side, UsableKeyStatisticsQuery(where)));
  UsableKey key = ChooseUsableKey(stats, [&](const std::string& name) -> std::optional<bool> {
    for (const Column& c : def.columns) {
      if (c.name == name) return c.nullable;
    }
    return std::nullopt;
  });
  def.key_name = key.name;
  for (const std::string& name : key.columns) {
    for (size_t i = 0; i < def.columns.size(); ++i) {
      if (def.columns[i].name == name) {
        def.key.push_back(i);
        break;
      }
    }
  }
  return def;
}

std::string Verifier::DefinitionMismatch(const TableDef& p, const TableDef& s) {
  if (p.table_type != s.table_type) {
    return "the table is a " + p.table_type + " on the primary, a " + s.table_type +
           " on the secondary";
  }
  size_t n = std::min(p.columns.size(), s.columns.size());
  for (size_t i = 0; i < n; ++i) {
    std::string dp = p.columns[i].Describe(), ds = s.columns[i].Describe();
    if (dp != ds) {
      return "column " + std::to_string(i + 1) + " is " + dp + " on the primary, " + ds +
             " on the secondary";
    }
  }
  if (p.columns.size() != s.columns.size()) {
    const TableDef& longer = p.columns.size() > s.columns.size() ? p : s;
    return std::to_string(p.columns.size()) + " columns on the primary, " +
           std::to_string(s.columns.size()) + " on the secondary (column " +
           longer.columns[n].Describe() + " exists only on the " +
           (&longer == &p ? "primary" : "secondary") + ")";
  }
  if (p.DescribeKey() != s.DescribeKey()) {
    return "the key is " + p.DescribeKey() + " on the primary, " + s.DescribeKey() +
           " on the secondary";
  }
  return "";
}

Result<uint64_t> Verifier::CountRows(MysqlSession* side) {
  RS_ASSIGN_OR_RETURN(auto rows, Query(side, "SELECT COUNT(*) FROM " + qualified_));
  return rows.empty() ? uint64_t{0} : ParseCount(rows[0][0]);
}

Result<TableVerifyResult> Verifier::Run() {
  RS_ASSIGN_OR_RETURN(TableDef p, ReadDefinition(primary_));
  RS_ASSIGN_OR_RETURN(TableDef s, ReadDefinition(secondary_));

  if (p.table_type.empty() && s.table_type.empty()) {
    result_.status = "unverified";
    result_.error = "no such table on the primary or the secondary";
    return result_;
  }
  result_.fingerprint = Fingerprint(p.Describe() + "\n" + s.Describe());
  resume_ = options_.resume;
  if (resume_ != nullptr && (resume_->fingerprint != result_.fingerprint || !resume_->so_far)) {
    resume_ = nullptr;  // the definitions changed since: start over
  }
  if (resume_ != nullptr && resume_->finished) {
    TableVerifyResult earlier = *resume_->so_far;
    earlier.db = result_.db;
    earlier.table = result_.table;
    earlier.fingerprint = result_.fingerprint;
    earlier.resumed = "finished";
    return earlier;
  }
  if (p.table_type.empty() || s.table_type.empty()) {
    result_.status = "differs";
    if (p.table_type.empty()) {
      result_.error = "the table exists only on the secondary";
      RS_ASSIGN_OR_RETURN(result_.extra_rows, CountRows(secondary_));
    } else {
      result_.error = "the table is missing on the secondary";
      RS_ASSIGN_OR_RETURN(result_.missing_rows, CountRows(primary_));
      result_.rows = result_.missing_rows;
    }
    return result_;
  }
  if (std::string mismatch = DefinitionMismatch(p, s); !mismatch.empty()) {
    result_.status = "differs";
    result_.error = "the table definitions differ: " + mismatch;
    return result_;
  }
  if (p.table_type != "BASE TABLE" && p.table_type != "SYSTEM VERSIONED") {
    result_.status = "unverified";
    result_.error = "not a base table (" + p.table_type + ")";
    return result_;
  }
  p.clustered_by_key = p.clustered_by_key && s.clustered_by_key;
  def_ = std::move(p);
  if (options_.collect_keys) {
    TableDifferences& d = result_.differences;
    d.table_type = def_.table_type;
    for (const Column& c : def_.columns) {
      d.columns.push_back(TableColumn{c.name, c.data_type, c.charset, c.generated});
    }
    for (size_t position : def_.key) d.key_columns.push_back(def_.columns[position].name);
  }

  std::vector<EncodedColumn> encoded;
  for (const Column& c : def_.columns) {
    if (!c.virtual_generated) encoded.push_back(EncodedColumn{c.name, c.data_type});
  }
  if (encoded.empty()) {
    result_.status = "unverified";
    result_.error = "the table has no stored columns";
    return result_;
  }
  // The row encoding (sync/mysql/row_encoding.h), shared with bootstrap's resync.
  row_encoding_ = RowEncodingSql(encoded);
  row_hash_ = "SHA2(" + row_encoding_ + ", 256)";
  if (!def_.key.empty()) {
    index_hint_ =
        " FORCE INDEX (" +
        (def_.key_name == "PRIMARY" ? std::string("PRIMARY") : QuoteIdentifier(def_.key_name)) +
        ")";
    // InnoDB stores rows in primary-key order and reads a primary-key range in that order; other
    // keys, engines and partitioned tables (read partition by partition) sort.
    if (!(def_.key_name == "PRIMARY" && def_.clustered_by_key)) {
      stream_order_ = " ORDER BY " + KeyOrder();
    }
  }
  // A summary concatenates at most max_allowed_packet bytes (the server caps GROUP_CONCAT there);
  // group_concat_max_len must not cut it shorter.
  for (MysqlSession* side : {primary_, secondary_}) {
    RS_RETURN_IF_ERROR(side->Execute("SET SESSION group_concat_max_len = 4294967295", What(side)));
    RS_ASSIGN_OR_RETURN(auto packet, Query(side, "SELECT @@max_allowed_packet"));
    uint64_t bytes = packet.empty() ? 0 : ParseCount(packet[0][0]);
    if (bytes > 0) max_packet_ = std::min(max_packet_, bytes);
  }
  if (options_.collect_keys) result_.differences.row_hash = row_hash_;

  RS_RETURN_IF_ERROR(def_.key.empty() ? VerifyMultiset() : VerifyKeyed());
  if (!unverified_.empty()) {
    result_.status = "unverified";
    result_.error = unverified_;
  } else if (result_.missing_rows + result_.extra_rows + result_.changed_rows > 0) {
    result_.status = "differs";
  } else {
    result_.status = "equal";
  }
  return result_;
}

// --- Keyed tables ---------------------------------------------------------------------------

std::string Verifier::KeyOrder() const {
  std::string order;
  for (size_t position : def_.key) {
    order += (order.empty() ? "" : ", ") + QuoteIdentifier(def_.columns[position].name);
  }
  return order;
}

// Per key column two result columns: the value as fetched for a literal, and its raw value.
std::string Verifier::KeyLiteralColumns() const {
  std::string select;
  for (size_t position : def_.key) {
    const Column& c = def_.columns[position];
    std::string id = QuoteIdentifier(c.name);
    std::string fetch;
    switch (KindOf(c)) {
      case KeyLiteralKind::kString:
      case KeyLiteralKind::kBinary:
        fetch = "HEX(" + id + ")";
        break;
      case KeyLiteralKind::kOrdinal:
        fetch = "(" + id + " + 0)";
        break;
      case KeyLiteralKind::kFloat:
        fetch = "(" + id + " + 0e0)";
        break;
      case KeyLiteralKind::kNumber:
      case KeyLiteralKind::kText:
        fetch = id;
        break;
    }
    select += (select.empty() ? "" : ", ") + fetch + ", " + id;
  }
  return select;
}

Key Verifier::KeyFromRow(const MysqlSession::Row& row) const {
  Key key;
  for (size_t i = 0; i < def_.key.size(); ++i) {
    const Column& c = def_.columns[def_.key[i]];
    std::string value = row[2 * i].value_or("");
    switch (KindOf(c)) {
      case KeyLiteralKind::kString:
        key.push_back("_" + c.charset + " X'" + value + "'");
        break;
      case KeyLiteralKind::kBinary:
        key.push_back("X'" + value + "'");
        break;
      case KeyLiteralKind::kText:
        key.push_back(QuoteString(value));
        break;
      case KeyLiteralKind::kOrdinal:
      case KeyLiteralKind::kFloat:
      case KeyLiteralKind::kNumber:
        key.push_back(value);
        break;
    }
  }
  return key;
}

std::string Verifier::DisplayKey(const MysqlSession::Row& row) const {
  std::string text;
  for (size_t i = 0; i < def_.key.size(); ++i) {
    const Column& c = def_.columns[def_.key[i]];
    const std::string fetched = row[2 * i].value_or("");
    const std::string raw = row[2 * i + 1].value_or("");
    std::string value;
    switch (KindOf(c)) {
      case KeyLiteralKind::kBinary:
        value = "X'" + fetched + "'";
        break;
      case KeyLiteralKind::kString:
      case KeyLiteralKind::kText:
        value = QuoteString(raw);
        break;
      case KeyLiteralKind::kOrdinal:
        value = c.data_type == "bit" ? fetched : QuoteString(raw);
        break;
      case KeyLiteralKind::kFloat:
      case KeyLiteralKind::kNumber:
        value = fetched;
        break;
    }
    text += (text.empty() ? "" : ",") + c.name + "=" + value;
  }
  return text;
}

std::string Verifier::KeyPredicate(const Key& key) const {
  std::string predicate;
  for (size_t i = 0; i < def_.key.size(); ++i) {
    predicate +=
        (i == 0 ? "" : " AND ") + QuoteIdentifier(def_.columns[def_.key[i]].name) + " = " + key[i];
  }
  return def_.key.size() > 1 ? "(" + predicate + ")" : predicate;
}

std::string Verifier::Where(const Range& range) const {
  std::vector<std::string> columns;
  for (size_t position : def_.key) {
    const Column& c = def_.columns[position];
    columns.push_back(QuoteIdentifier(c.name));
  }
  std::string where;
  if (range.lower) where = KeyBoundCondition(columns, *range.lower, true);
  if (range.upper) {
    where += (where.empty() ? "" : " AND ") + KeyBoundCondition(columns, *range.upper, false);
  }
  return where.empty() ? "" : " WHERE " + where;
}

Result<Summary> Verifier::Summarize(MysqlSession* side, const Range& range) {
  // One SHA-256 over the concatenated row encodings, in key order: order-sensitive (equal edits
  // in two rows cannot cancel out), and one hash per chunk instead of one per row.
  RS_ASSIGN_OR_RETURN(auto rows, Query(side, "SELECT COUNT(*), SHA2(GROUP_CONCAT(" + row_encoding_ +
                                                 stream_order_ + " SEPARATOR ''), 256) FROM " +
                                                 qualified_ + index_hint_ + Where(range)));
  Summary summary;
  if (!rows.empty() && rows[0].size() == 2) {
    summary.count = ParseCount(rows[0][0]);
    summary.hashed = summary.count;
    summary.digest = rows[0][1].value_or("");
  }
  // GROUP_CONCAT says only with a warning that it cut its result short (1260, past
  // group_concat_max_len or max_allowed_packet), and CONCAT that a row's encoding is NULL because
  // it exceeds max_allowed_packet (1301; GROUP_CONCAT skips NULLs silently).
  RS_ASSIGN_OR_RETURN(auto warnings, Query(side, "SHOW WARNINGS"));
  for (const auto& w : warnings) {
    const std::string code = w.size() > 1 ? w[1].value_or("") : "";
    if (code == "1301") {
      summary.hashed = 0;
    } else {
      summary.exact = false;
    }
  }
  return summary;
}

Status Verifier::SummarizeBoth(const Range& range, Summary* p, Summary* s) {
  auto secondary = std::async(std::launch::async, [&]() -> Result<Summary> {
    MysqlThreadScope thread_scope;
    return Summarize(secondary_, range);
  });
  Result<Summary> primary = Summarize(primary_, range);
  Result<Summary> second = secondary.get();
  if (!primary.ok()) return primary.status();
  if (!second.ok()) return second.status();
  *p = std::move(primary).value();
  *s = std::move(second).value();
  return Status::Ok();
}

Result<std::optional<Key>> Verifier::KeyAt(MysqlSession* side, const Range& range,
                                           uint64_t offset) {
  RS_ASSIGN_OR_RETURN(
      auto rows,
      Query(side, "SELECT " + KeyLiteralColumns() + " FROM " + qualified_ + Where(range) +
                      " ORDER BY " + KeyOrder() + " LIMIT 1 OFFSET " + std::to_string(offset)));
  if (rows.empty()) return std::optional<Key>();
  return std::optional<Key>(KeyFromRow(rows[0]));
}

Status Verifier::VerifyKeyed() {
  uint64_t min_rows =
      std::max<uint64_t>(1, std::min(options_.min_chunk_rows, options_.max_chunk_rows));
  uint64_t max_rows = std::max(min_rows, options_.max_chunk_rows);
  bool adapt = options_.chunk_target.count() > 0;
  uint64_t chunk = std::max<uint64_t>(1, options_.chunk_rows);
  if (adapt) chunk = std::clamp(chunk, min_rows, max_rows);
  std::optional<Key> lower;
  if (const TableResumePoint* resume = resume_;
      resume != nullptr && !resume->after.empty() && resume->after.size() == def_.key.size()) {
    const TableVerifyResult& so_far = *resume->so_far;
    result_.rows = so_far.rows;
    result_.missing_rows = so_far.missing_rows;
    result_.extra_rows = so_far.extra_rows;
    result_.changed_rows = so_far.changed_rows;
    result_.sample_keys = so_far.sample_keys;
    lower = resume->after;
    result_.resumed = "continued";
  }
  // Rows per chunk at most, so that a chunk's concatenation stays near max_chunk_bytes, estimated
  // from the first rows' encodings.
  uint64_t byte_cap = std::numeric_limits<uint64_t>::max();
  if (options_.max_chunk_bytes > 0) {
    RS_ASSIGN_OR_RETURN(
        auto sample,
        Query(primary_, "SELECT CEIL(AVG(LENGTH(e))) FROM (SELECT " + row_encoding_ +
                            " AS e FROM " + qualified_ + index_hint_ + Where(Range{lower, {}}) +
                            " ORDER BY " + KeyOrder() + " LIMIT 100) AS x"));
    uint64_t row_bytes = sample.empty() ? 0 : ParseCount(sample[0][0]);
    if (row_bytes > 0) {
      byte_cap =
          std::max<uint64_t>(1, std::min(options_.max_chunk_bytes, max_packet_ / 2) / row_bytes);
    }
  }
  chunk = std::min(chunk, byte_cap);

  while (true) {
    if (options_.before_chunk) RS_RETURN_IF_ERROR(options_.before_chunk());
    const Clock::TimePoint start = options_.clock->Now();
    RS_ASSIGN_OR_RETURN(std::optional<Key> upper, KeyAt(primary_, Range{lower, {}}, chunk - 1));
    Range range{lower, upper};
    Summary p, s;
    RS_RETURN_IF_ERROR(SummarizeBoth(range, &p, &s));
    auto elapsed = options_.clock->Now() - start;
    if (!CheckHashed(p) || !CheckHashed(s)) return Status::Ok();
    result_.rows += p.count;
    ++result_.chunks;
    if (!(p == s)) {
      ++result_.bisected_chunks;
      RS_RETURN_IF_ERROR(BisectRange(range, p, s));
    }
    if (!unverified_.empty()) return Status::Ok();
    if (options_.progress) options_.progress(result_.rows);
    if (options_.chunk_done) options_.chunk_done(upper.value_or(Key{}), result_);
    if (!upper) return Status::Ok();
    lower = std::move(upper);
    if (!p.exact || !s.exact) {
      // The server cut the concatenation short: smaller chunks from now on.
      chunk = std::max<uint64_t>(1, chunk / 2);
      byte_cap = chunk;
    } else if (adapt) {
      if (elapsed < options_.chunk_target / 2) {
        chunk = std::min({chunk * 2, max_rows, byte_cap});
      } else if (elapsed > options_.chunk_target * 2) {
        chunk = std::max(chunk / 2, min_rows);
      }
    }
  }
}

Status Verifier::BisectRange(const Range& range, Summary p, Summary s) {
  struct Pending {
    Range range;
    Summary p, s;
  };
  std::vector<Pending> stack;
  stack.push_back({range, std::move(p), std::move(s)});
  while (!stack.empty()) {
    Pending item = std::move(stack.back());
    stack.pop_back();
    if (item.p == item.s) continue;
    if (item.p.count <= bisect_rows_ && item.s.count <= bisect_rows_) {
      RS_RETURN_IF_ERROR(CompareRows(item.range));
      continue;
    }
    // Split at the middle key of the side holding more rows: both halves hold at least one of
    // its rows, so every split makes progress.
    MysqlSession* side = item.p.count >= item.s.count ? primary_ : secondary_;
    uint64_t n = std::max(item.p.count, item.s.count);
    RS_ASSIGN_OR_RETURN(std::optional<Key> middle, KeyAt(side, item.range, n / 2 - 1));
    if (!middle) {
      return Status::Internal("verify " + qualified_ + ": a key range counted " +
                              std::to_string(n) + " rows but has fewer (is the snapshot open?)");
    }
    Range left{item.range.lower, middle};
    Range right{middle, item.range.upper};
    Summary lp, ls, rp, rs;
    RS_RETURN_IF_ERROR(SummarizeBoth(left, &lp, &ls));
    RS_RETURN_IF_ERROR(SummarizeBoth(right, &rp, &rs));
    // Right first on the stack, so that ranges are finished in key order.
    stack.push_back({std::move(right), std::move(rp), std::move(rs)});
    stack.push_back({std::move(left), std::move(lp), std::move(ls)});
  }
  return Status::Ok();
}

Status Verifier::CompareRows(const Range& range) {
  std::string sql = "SELECT " + KeyLiteralColumns() + ", " + row_hash_ + " FROM " + qualified_ +
                    Where(range) + " ORDER BY " + KeyOrder();
  RS_ASSIGN_OR_RETURN(auto p_rows, Query(primary_, sql));
  RS_ASSIGN_OR_RETURN(auto s_rows, Query(secondary_, sql));
  const size_t hash_column = 2 * def_.key.size();
  for (const auto* rows : {&p_rows, &s_rows}) {
    for (const auto& row : *rows) {
      if (!row[hash_column]) {
        MarkEncodingOverflow();
        return Status::Ok();
      }
    }
  }
  // Rows are matched by their key's bytes, not by comparing keys in the client: the server's
  // collation decides the order, and the same key on both sides has the same bytes.
  std::map<Key, size_t> secondary_index;
  for (size_t i = 0; i < s_rows.size(); ++i) secondary_index.emplace(KeyFromRow(s_rows[i]), i);
  std::vector<bool> matched(s_rows.size(), false);
  for (const auto& row : p_rows) {
    Key key = KeyFromRow(row);
    auto it = secondary_index.find(key);
    if (it == secondary_index.end()) {
      ++result_.missing_rows;
      AddSample(DisplayKey(row));
      Collect(&TableDifferences::missing, KeyPredicate(key));
      continue;
    }
    matched[it->second] = true;
    if (row[hash_column] != s_rows[it->second][hash_column]) {
      ++result_.changed_rows;
      AddSample(DisplayKey(row));
      Collect(&TableDifferences::changed, KeyPredicate(key));
    }
  }
  for (size_t i = 0; i < s_rows.size(); ++i) {
    if (matched[i]) continue;
    ++result_.extra_rows;
    AddSample(DisplayKey(s_rows[i]));
    Collect(&TableDifferences::extra, KeyPredicate(KeyFromRow(s_rows[i])));
  }
  return Status::Ok();
}

// --- Tables without a usable key ------------------------------------------------------------

Status Verifier::VerifyMultiset() {
  if (options_.before_chunk) RS_RETURN_IF_ERROR(options_.before_chunk());
  // The row hashes materialised once (a LIMIT keeps the server from merging the derived table into
  // the outer query, which would compute SHA2 again for every reference to h).
  const std::string hashes =
      "(SELECT " + row_hash_ + " AS h FROM " + qualified_ + " LIMIT 18446744073709551615) AS x";
  // Per 3-hex-digit prefix: the count, and one SHA-256 over the prefix's row hashes sorted (a
  // multiset's canonical form: no two different multisets give the same text).
  const std::string by_prefix =
      "SELECT LEFT(h, 3) AS p, COUNT(*), COUNT(h), "
      "SHA2(GROUP_CONCAT(h ORDER BY h SEPARATOR ''), 256) FROM " +
      hashes + " GROUP BY p ORDER BY p";
  std::map<std::string, std::pair<Summary, Summary>> buckets;
  Summary total_p, total_s;
  RS_RETURN_IF_ERROR(QueryBoth(by_prefix, [&](MysqlSession* side, const Rows& rows, bool exact) {
    Summary& total = side == primary_ ? total_p : total_s;
    for (const auto& row : rows) {
      Summary s;
      s.count = ParseCount(row[1]);
      s.hashed = ParseCount(row[2]);
      s.digest = row[3].value_or("");
      s.exact = exact;  // a cut-short concatenation: compared hash by hash below
      total.count += s.count;
      total.hashed += s.hashed;
      auto& bucket = buckets[row[0].value_or("")];
      (side == primary_ ? bucket.first : bucket.second) = std::move(s);
    }
  }));
  if (!CheckHashed(total_p) || !CheckHashed(total_s)) return Status::Ok();
  result_.rows = total_p.count;

  std::string differing;
  for (const auto& [prefix, pair] : buckets) {
    if (!(pair.first == pair.second)) {
      differing += (differing.empty() ? "" : ", ") + QuoteString(prefix);
    }
  }
  if (!differing.empty()) {
    // Hash -> (count on the primary, count on the secondary), in hash order.
    std::map<std::string, std::pair<uint64_t, uint64_t>> counts;
    const std::string detail = "SELECT h, COUNT(*) FROM " + hashes + " WHERE LEFT(h, 3) IN (" +
                               differing + ") GROUP BY h ORDER BY h";
    RS_RETURN_IF_ERROR(QueryBoth(detail, [&](MysqlSession* side, const Rows& rows, bool) {
      for (const auto& row : rows) {
        auto& c = counts[row[0].value_or("")];
        (side == primary_ ? c.first : c.second) = ParseCount(row[1]);
      }
    }));
    for (const auto& [hash, c] : counts) {
      if (c.first == c.second) continue;
      if (c.first > c.second) {
        result_.missing_rows += c.first - c.second;
        for (uint64_t i = c.second; i < c.first; ++i) Collect(&TableDifferences::missing, hash);
      } else {
        result_.extra_rows += c.second - c.first;
        for (uint64_t i = c.first; i < c.second; ++i) Collect(&TableDifferences::extra, hash);
      }
      AddSample(hash.substr(0, 12));
    }
  }
  if (options_.progress) options_.progress(result_.rows);
  return Status::Ok();
}

Status Verifier::QueryBoth(
    const std::string& sql,
    const std::function<void(MysqlSession* side, const Rows& rows, bool exact)>& take) {
  // Each side's rows and whether the server ran it without a warning (a GROUP_CONCAT cut short
  // at max_allowed_packet says so only in a warning).
  auto run = [&](MysqlSession* side) -> Result<std::pair<Rows, bool>> {
    RS_ASSIGN_OR_RETURN(auto rows, Query(side, sql));
    RS_ASSIGN_OR_RETURN(auto warnings, Query(side, "SHOW WARNINGS"));
    return std::make_pair(std::move(rows), warnings.empty());
  };
  auto secondary = std::async(std::launch::async, [&]() {
    MysqlThreadScope thread_scope;
    return run(secondary_);
  });
  Result<std::pair<Rows, bool>> p = run(primary_);
  Result<std::pair<Rows, bool>> s = secondary.get();
  if (!p.ok()) return p.status();
  if (!s.ok()) return s.status();
  take(primary_, p->first, p->second);
  take(secondary_, s->first, s->second);
  return Status::Ok();
}

}  // namespace

bool DataTypeIn(std::string_view data_type, std::initializer_list<std::string_view> types) {
  for (std::string_view t : types) {
    if (data_type == t) return true;
  }
  return false;
}

Result<TableVerifyResult> VerifyTable(MysqlSession* primary, MysqlSession* secondary,
                                      const std::string& db, const std::string& table,
                                      const TableVerifyOptions& options) {
  Verifier verifier(primary, secondary, db, table, options);
  return verifier.Run();
}

}  // namespace replsync::verify

#include "capture/binlog/writeset.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

namespace replsync::capture {
namespace {

void PutBytes(std::string* out, const void* data, size_t n) {
  out->append(static_cast<const char*>(data), n);
}

template <typename T>
void PutScalar(std::string* out, T v) {
  PutBytes(out, &v, sizeof v);
}

void PutText(std::string* out, std::string_view text, bool fold) {
  if (fold) {
    size_t end = text.size();
    while (end > 0 && text[end - 1] == ' ') --end;
    PutScalar<uint32_t>(out, static_cast<uint32_t>(end));
    for (size_t i = 0; i < end; ++i) {
      char c = text[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      out->push_back(c);
    }
    return;
  }
  PutScalar<uint32_t>(out, static_cast<uint32_t>(text.size()));
  out->append(text);
}

// One key column's value, unambiguous within the column (the column's type is the same for
// every row of the table, so kinds never need to agree across columns).
void PutValue(std::string* out, const ColumnDef& column, const Value& v) {
  out->push_back(static_cast<char>(v.kind));
  switch (v.kind) {
    case ValueKind::kNull:
      break;
    case ValueKind::kInt:
    case ValueKind::kYear:
      PutScalar(out, v.i);
      break;
    case ValueKind::kUInt:
    case ValueKind::kBit:
    case ValueKind::kEnum:
    case ValueKind::kSet:
      PutScalar(out, v.u);
      break;
    case ValueKind::kFloat:
      PutScalar(out, v.f);
      break;
    case ValueKind::kDouble:
      PutScalar(out, v.d);
      break;
    case ValueKind::kDate:
    case ValueKind::kDateTime:
      PutScalar(out, v.dt.year);
      PutScalar(out, v.dt.month);
      PutScalar(out, v.dt.day);
      PutScalar(out, v.dt.hour);
      PutScalar(out, v.dt.minute);
      PutScalar(out, v.dt.second);
      PutScalar(out, v.dt.micro);
      break;
    case ValueKind::kTime:
      PutScalar(out, v.tm.negative);
      PutScalar(out, v.tm.hours);
      PutScalar(out, v.tm.minute);
      PutScalar(out, v.tm.second);
      PutScalar(out, v.tm.micro);
      break;
    case ValueKind::kTimestamp:
      PutScalar(out, v.ts.seconds);
      PutScalar(out, v.ts.micro);
      break;
    case ValueKind::kString:
      PutText(out, v.bytes, column.is_text());
      break;
    default:  // decimal digits, binary strings, JSON, geometry, vectors: exact bytes
      PutText(out, v.bytes, false);
      break;
  }
}

void PutTableName(std::string* out, char tag, const std::string& db, const std::string& table) {
  out->push_back(tag);
  out->append(db);
  out->push_back('\0');
  out->append(table);
}

}  // namespace

uint64_t WritesetBuilder::TableKey(const std::string& db, const std::string& table) {
  std::string buf;
  PutTableName(&buf, 'T', db, table);
  return XXH3_64bits(buf.data(), buf.size());
}

void WritesetBuilder::Reset() {
  overflow_ = false;
  row_keys_.clear();
  table_keys_.clear();
  tables_.clear();
}

bool WritesetBuilder::RowKey(const TableMap& table, const RowImage& image, uint64_t* key) {
  if (table.primary_key.empty()) return false;
  for (uint32_t prefix : table.primary_key_prefix) {
    if (prefix != 0) return false;
  }
  thread_local std::string buf;
  buf.clear();
  PutTableName(&buf, 'R', table.db, table.table);
  buf.push_back('\0');
  for (uint32_t c : table.primary_key) {
    if (c >= image.values.size() || c >= table.columns.size()) return false;
    if (c < image.present.size() && !image.present[c]) return false;
    const Value& v = image.values[c];
    if (v.kind == ValueKind::kNull) return false;
    PutValue(&buf, table.columns[c], v);
  }
  *key = XXH3_64bits(buf.data(), buf.size());
  return true;
}

void WritesetBuilder::AddTable(const TableMap& table) {
  table_keys_.insert(TableKey(table.db, table.table));
}

void WritesetBuilder::AddRow(const TableMap& table, const RowImage* before,
                             const RowImage* after) {
  tables_.emplace(table.db, table.table);
  if (overflow_) {
    AddTable(table);
    return;
  }
  uint64_t key = 0;
  bool any = false;
  if (before != nullptr && RowKey(table, *before, &key)) {
    row_keys_.push_back(key);
    any = true;
  }
  if (after != nullptr && RowKey(table, *after, &key)) {
    if (!any || row_keys_.back() != key) row_keys_.push_back(key);
    any = true;
  }
  // An UPDATE whose after image lacks key columns (MINIMAL images) keeps the key of its before
  // image, which is the row's key unless the key changed (then the after image has it).
  if (!any) AddTable(table);
  if (row_keys_.size() > max_keys_) {
    overflow_ = true;
    row_keys_.clear();
    for (const auto& [db, name] : tables_) table_keys_.insert(TableKey(db, name));
  }
}

void WritesetBuilder::Fill(pb::DbTransaction* db) const {
  db->set_writeset_version(1);
  db->clear_writeset();
  db->clear_tables();
  std::vector<uint64_t> keys(row_keys_);
  keys.insert(keys.end(), table_keys_.begin(), table_keys_.end());
  std::sort(keys.begin(), keys.end());
  keys.erase(std::unique(keys.begin(), keys.end()), keys.end());
  for (uint64_t k : keys) db->add_writeset(k);
  for (const auto& [name_db, name] : tables_) {
    pb::TableName* t = db->add_tables();
    t->set_db(name_db);
    t->set_table(name);
  }
}

}  // namespace replsync::capture

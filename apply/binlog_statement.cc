#include "apply/binlog_statement.h"

#include <fmt/format.h>

#include <utility>

#include "sync/text.h"

namespace replsync::apply {
namespace {

constexpr size_t kHeaderSize = 19;
constexpr std::string_view kPrefix = "BINLOG '";

// ROWS events' post-header: table id (6 bytes in every v4 binlog), then 2 bytes of flags.
constexpr size_t kRowsFlagsOffset = kHeaderSize + 6;
constexpr uint16_t kStmtEndFlag = 0x0001;

bool EndsStatement(std::string_view event) {
  if (event.size() < kRowsFlagsOffset + 2) return false;
  const auto lo = static_cast<uint8_t>(event[kRowsFlagsOffset]);
  const auto hi = static_cast<uint8_t>(event[kRowsFlagsOffset + 1]);
  return ((lo | hi << 8) & kStmtEndFlag) != 0;
}

}  // namespace

bool IsRowsEventType(uint8_t type) {
  return (type >= 20 && type <= 25) || (type >= 30 && type <= 32) || type == 39 ||
         (type >= 166 && type <= 171);
}

BinlogStatementWriter::BinlogStatementWriter(size_t max_statement_bytes, Emit emit)
    : max_bytes_(max_statement_bytes), emit_(std::move(emit)) {}

std::string BinlogStatementWriter::ForEvent(std::string_view event) {
  std::string sql(kPrefix);
  AppendBase64(event, &sql);
  sql.push_back('\'');
  return sql;
}

void BinlogStatementWriter::Reset() {
  sql_.clear();
  has_rows_ = false;
  table_maps_.clear();
  statement_ended_ = true;
}

void BinlogStatementWriter::Start() {
  sql_.assign(kPrefix);
  has_rows_ = false;
  for (const std::string& map : table_maps_) Append(map);
}

void BinlogStatementWriter::Append(const std::string& encoded) {
  sql_ += encoded;
  sql_.push_back('\n');
}

Status BinlogStatementWriter::Add(std::string_view event) {
  if (event.size() < kHeaderSize) {
    return Status::InvalidArgument(
        fmt::format("binlog event of {} bytes is shorter than an event header", event.size()));
  }
  const auto type = static_cast<uint8_t>(event[4]);
  scratch_.clear();
  AppendBase64(event, &scratch_);
  // One more event would overflow the bound: cut here, unless the statement has no rows yet
  // (then cutting would only repeat the table maps).
  if (!sql_.empty() && has_rows_ && sql_.size() + scratch_.size() + 2 > max_bytes_) {
    RS_RETURN_IF_ERROR(Flush());
  }
  if (type == kTableMapEvent) {
    if (statement_ended_) {
      table_maps_.clear();
      statement_ended_ = false;
    }
    table_maps_.push_back(scratch_);
    if (sql_.empty()) {
      Start();  // includes this map
    } else {
      Append(scratch_);
    }
    return Status::Ok();
  }
  if (sql_.empty()) Start();
  Append(scratch_);
  has_rows_ = true;
  if (IsRowsEventType(type) && EndsStatement(event)) statement_ended_ = true;
  return Status::Ok();
}

Status BinlogStatementWriter::Flush() {
  if (sql_.empty()) return Status::Ok();
  if (!has_rows_) {
    // Only table maps: nothing to apply yet; they are repeated in the next statement.
    sql_.clear();
    return Status::Ok();
  }
  sql_.push_back('\'');
  ++statements_emitted_;
  Status status = emit_(sql_);
  sql_.clear();
  has_rows_ = false;
  return status;
}

}  // namespace replsync::apply

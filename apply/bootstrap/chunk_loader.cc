#include "apply/bootstrap/chunk_loader.h"

#include <utility>

#include "apply/bootstrap/progress_store.h"
#include "sync/bootstrap/key_range.h"

namespace replsync::apply {
namespace {

std::string Qualified(const std::string& db, const std::string& table) {
  return QuoteIdentifier(db) + "." + QuoteIdentifier(table);
}

std::string Names(const std::vector<bootstrap::Column>& columns) {
  std::string names;
  for (const bootstrap::Column& c : columns) {
    if (!names.empty()) names += ", ";
    names += c.name;
  }
  return names;
}

}  // namespace

Result<std::unique_ptr<ChunkLoader>> ChunkLoader::Open(const MysqlOptions& mysql,
                                                       ChunkLoaderOptions options) {
  RS_ASSIGN_OR_RETURN(std::unique_ptr<MariadbConnection> connection,
                      MariadbConnection::Open(mysql, {.local_infile = true}));
  const std::string what = "set up the bootstrap loader's session";
  RS_RETURN_IF_ERROR(
      connection->Execute("SET SESSION sql_log_bin = 0, foreign_key_checks = 0, unique_checks = 0, "
                          "sql_mode = 'NO_AUTO_VALUE_ON_ZERO', time_zone = '+00:00'",
                          what));
  RS_RETURN_IF_ERROR(connection->Execute("SET NAMES binary", what));
  RS_RETURN_IF_ERROR(
      connection->Execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", what));
  return std::unique_ptr<ChunkLoader>(new ChunkLoader(std::move(connection), std::move(options)));
}

ChunkLoader::ChunkLoader(std::unique_ptr<MariadbConnection> connection, ChunkLoaderOptions options)
    : connection_(std::move(connection)), options_(std::move(options)) {}

void ChunkLoader::Step(std::string_view step) const {
  if (options_.before_step) options_.before_step(step);
}

Status ChunkLoader::Fail(Status failure) {
  whole_.reset();
  if (!connection_->broken()) {
    // A failed ROLLBACK leaves nothing to add: the server rolls back when the connection ends.
    (void)connection_->Execute("ROLLBACK", "roll back a bootstrap chunk");
  }
  return failure;
}

Result<std::vector<bootstrap::Column>> ChunkLoader::CheckColumns(const ChunkLoad& load) {
  Step("check");
  Result<std::vector<bootstrap::Column>> read =
      bootstrap::ReadColumns(*connection_, load.db, load.table);
  if (!read.ok() && read.status().IsNotFound()) {
    // Created or renamed in after this point: no columns are the chunk's.
    return Status::FailedPrecondition(read.status().message() + " at this point");
  }
  RS_ASSIGN_OR_RETURN(std::vector<bootstrap::Column> all, std::move(read));
  std::vector<bootstrap::Column> stored = bootstrap::StoredColumns(all);
  const std::vector<bootstrap::Column> chunk = bootstrap::StoredColumns(load.columns);
  bool same = stored.size() == chunk.size();
  for (size_t i = 0; same && i < stored.size(); ++i) same = stored[i].name == chunk[i].name;
  if (!same) {
    return Status::FailedPrecondition(load.db + "." + load.table + ": the chunk's columns (" +
                                      Names(chunk) + ") are not the table's (" + Names(stored) +
                                      ") at this point");
  }
  return stored;
}

Status ChunkLoader::Load(const ChunkLoad& load, const std::vector<bootstrap::Column>& stored) {
  Step("load");
  const std::string what = "load a bootstrap chunk into " + Qualified(load.db, load.table);
  RS_ASSIGN_OR_RETURN(
      MariadbConnection::LoadResult loaded,
      connection_->LoadLocal(bootstrap::LoadDataStatement(load.db, load.table, stored, "chunk"),
                             load.text, what));
  if (loaded.warnings > 0) {
    return Status::Server(what + ": " + std::to_string(loaded.warnings) +
                          " warning(s), the chunk is not loaded: " + loaded.warning_text);
  }
  if (loaded.rows != load.rows) {
    return Status::Server(what + ": the chunk holds " + std::to_string(load.rows) +
                          " rows, the server loaded " + std::to_string(loaded.rows) +
                          "; the chunk is not loaded");
  }
  return Status::Ok();
}

Status ChunkLoader::LoadChunk(const ChunkLoad& load) {
  if (whole_ != nullptr) {
    return Status::Internal("LoadChunk while a table without a key is being loaded");
  }
  if (load.key_columns.empty()) {
    return Status::Internal("LoadChunk of " + Qualified(load.db, load.table) +
                            " without key columns (a table without a key is loaded whole)");
  }
  const std::string table = Qualified(load.db, load.table);
  Step("begin");
  RS_RETURN_IF_ERROR(connection_->Execute("START TRANSACTION", "begin a bootstrap chunk"));
  auto stored = CheckColumns(load);
  if (!stored.ok()) return Fail(stored.status());
  // After the check (a refused chunk changes nothing), before the LOAD (the range then holds
  // exactly the chunk's rows).
  Step("delete");
  Status s = connection_->Execute(
      "DELETE FROM " + table + bootstrap::KeyRangeWhere(load.key_columns, load.lower, load.upper),
      "delete the range of a bootstrap chunk from " + table);
  if (!s.ok()) return Fail(s);
  if (s = Load(load, *stored); !s.ok()) return Fail(s);
  Step("progress");
  s = connection_->Execute(
      ProgressStore::AdvanceTableSql(load.channel, load.db, load.table, load.upper, load.table_done,
                                     load.rows, load.bytes),
      "record a bootstrap chunk of " + table);
  if (!s.ok()) return Fail(s);
  Step("commit");
  s = connection_->Execute("COMMIT", "commit a bootstrap chunk of " + table);
  if (!s.ok()) return Fail(s);
  return Status::Ok();
}

Status ChunkLoader::BeginWholeTable(const std::string& channel, const std::string& db,
                                    const std::string& table) {
  if (whole_ != nullptr) {
    return Status::Internal("BeginWholeTable of " + Qualified(db, table) + " while " +
                            Qualified(whole_->db, whole_->table) + " is being loaded");
  }
  Step("begin");
  RS_RETURN_IF_ERROR(connection_->Execute("START TRANSACTION", "begin a bootstrap table"));
  Step("delete");
  Status s = connection_->Execute("DELETE FROM " + Qualified(db, table),
                                  "delete the rows of " + Qualified(db, table));
  if (!s.ok()) return Fail(s);
  whole_ = std::make_unique<WholeTable>(WholeTable{channel, db, table, 0, 0});
  return Status::Ok();
}

Status ChunkLoader::LoadPiece(const ChunkLoad& piece) {
  if (whole_ == nullptr || whole_->db != piece.db || whole_->table != piece.table) {
    return Fail(Status::Internal("LoadPiece of " + Qualified(piece.db, piece.table) +
                                 " without its BeginWholeTable"));
  }
  auto stored = CheckColumns(piece);
  if (!stored.ok()) return Fail(stored.status());
  if (Status s = Load(piece, *stored); !s.ok()) return Fail(s);
  whole_->rows += piece.rows;
  whole_->bytes += piece.bytes;
  return Status::Ok();
}

void ChunkLoader::AbandonWholeTable() {
  if (whole_ != nullptr) (void)Fail(Status::Ok());
}

Status ChunkLoader::FinishWholeTable() {
  if (whole_ == nullptr) return Status::Internal("FinishWholeTable without BeginWholeTable");
  const std::string table = Qualified(whole_->db, whole_->table);
  Step("progress");
  Status s = connection_->Execute(
      ProgressStore::AdvanceTableSql(whole_->channel, whole_->db, whole_->table, {},
                                     /*done=*/true, whole_->rows, whole_->bytes),
      "record the bootstrap of " + table);
  if (!s.ok()) return Fail(s);
  Step("commit");
  s = connection_->Execute("COMMIT", "commit the bootstrap of " + table);
  if (!s.ok()) return Fail(s);
  whole_.reset();
  return Status::Ok();
}

}  // namespace replsync::apply

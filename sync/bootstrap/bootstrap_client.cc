#include "sync/bootstrap/bootstrap_client.h"

#include <fmt/format.h>
#include <zstd.h>

#include <utility>

#include "sync/wire/zmq_transport.h"

namespace replsync {

Result<std::unique_ptr<BootstrapClient>> BootstrapClient::Connect(const std::string& endpoint,
                                                                  const ZmqClientSecurity& security,
                                                                  const Options& options) {
  ZmqOptions zopts;
  zopts.send_timeout = std::chrono::milliseconds(5000);
  auto transport = ZmqClientTransport::Connect(endpoint, security, zopts);
  if (!transport.ok()) {
    return transport.status().WithContext("connect to the primary at " + endpoint);
  }
  return std::make_unique<BootstrapClient>(std::move(transport).value(), endpoint, options);
}

Result<std::unique_ptr<BootstrapClient>> BootstrapClient::Connect(const NodeConfig& config,
                                                                  const std::string& endpoint,
                                                                  Options options) {
  RS_ASSIGN_OR_RETURN(TransportSecurity security, LoadTransportSecurity(config));
  RS_ASSIGN_OR_RETURN(ZmqClientSecurity client, security.ForClient(endpoint));
  options.node_name = config.node.name;
  return Connect(endpoint, client, options);
}

BootstrapClient::BootstrapClient(std::unique_ptr<ClientTransport> transport, std::string endpoint,
                                 Options options)
    : transport_(std::move(transport)),
      endpoint_(std::move(endpoint)),
      options_(std::move(options)),
      dctx_(ZSTD_createDCtx()) {}

Status BootstrapClient::Decompress(const std::string& data, uint64_t raw_bytes,
                                   const std::string& what, std::string* out) {
  const unsigned long long size = ZSTD_getFrameContentSize(data.data(), data.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size != raw_bytes) {
    return Status::Corruption(
        fmt::format("{}: its data is no zstd frame of {} bytes", what, raw_bytes));
  }
  out->resize(raw_bytes);
  ZstdDCtx local;
  ZSTD_DCtx* dctx = dctx_.get();
  if (dctx == nullptr) {
    RS_ASSIGN_OR_RETURN(local, NewZstdDCtx());
    dctx = local.get();
  }
  const size_t n = ZSTD_decompressDCtx(dctx, out->data(), out->size(), data.data(), data.size());
  if (ZSTD_isError(n) || n != raw_bytes) {
    return Status::Corruption(fmt::format("{} does not decompress: {}", what,
                                          ZSTD_isError(n) ? ZSTD_getErrorName(n) : "short"));
  }
  return Status::Ok();
}

Result<BootstrapClient::Round> BootstrapClient::BeginRound(uint32_t readers, bool definitions,
                                                           bool keep_stream) {
  pb::BootstrapRequest request;
  request.set_op(pb::BootstrapRequest::BEGIN_ROUND);
  request.set_readers(readers);
  request.set_definitions(definitions);
  request.set_keep_stream(keep_stream);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  if (reply.point_file().empty()) {
    return Status::Corruption(
        fmt::format("the primary at {} began a round without a point", endpoint_));
  }
  Round round;
  round.round = reply.round();
  round.point = BinlogPosition{reply.point_file(), reply.point_offset()};
  round.gtid = reply.point_gtid();
  round.lock_ms = reply.lock_ms();
  round.journal_seq = reply.journal_seq();
  round.databases.assign(reply.databases().begin(), reply.databases().end());
  round.tables.assign(reply.tables().begin(), reply.tables().end());
  if (definitions && round.journal_seq == 0) {
    return Status::Corruption(
        fmt::format("the primary at {} began round 0 without the stream's start", endpoint_));
  }
  return round;
}

pb::BootstrapRequest BootstrapClient::ChunkRequest(uint64_t round, uint32_t reader,
                                                   const std::string& db, const std::string& table,
                                                   const std::vector<std::string>& after) {
  pb::BootstrapRequest request;
  request.set_op(pb::BootstrapRequest::READ_CHUNK);
  request.set_round(round);
  request.set_reader(reader);
  request.mutable_table()->set_db(db);
  request.mutable_table()->set_table(table);
  for (const std::string& value : after) request.add_after(value);
  return request;
}

Result<BootstrapClient::Chunk> BootstrapClient::ReadChunk(uint64_t round, uint32_t reader,
                                                          const std::string& db,
                                                          const std::string& table,
                                                          const std::vector<std::string>& after,
                                                          uint64_t max_bytes, bool continue_piece) {
  pb::BootstrapRequest request = ChunkRequest(round, reader, db, table, after);
  request.set_max_bytes(max_bytes);
  request.set_continue_piece(continue_piece);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  return ChunkOf(reply,
                 fmt::format("a chunk of `{}`.`{}` from the primary at {}", db, table, endpoint_));
}

Result<BootstrapClient::Chunk> BootstrapClient::ReadRange(uint64_t round, uint32_t reader,
                                                          const std::string& db,
                                                          const std::string& table,
                                                          const std::vector<std::string>& after,
                                                          const std::vector<std::string>& upper) {
  pb::BootstrapRequest request = ChunkRequest(round, reader, db, table, after);
  request.set_bounded(true);
  for (const std::string& value : upper) request.add_upper(value);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  return ChunkOf(reply,
                 fmt::format("a range of `{}`.`{}` from the primary at {}", db, table, endpoint_));
}

Result<BootstrapClient::Summary> BootstrapClient::SummarizeChunk(
    uint64_t round, uint32_t reader, const std::string& db, const std::string& table,
    const std::vector<std::string>& after, uint64_t max_bytes) {
  pb::BootstrapRequest request = ChunkRequest(round, reader, db, table, after);
  request.set_max_bytes(max_bytes);
  request.set_summary_only(true);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  const std::string what = fmt::format("the summary of a chunk of `{}`.`{}` from the primary at {}",
                                       db, table, endpoint_);
  if (reply.column_types_size() != reply.columns_size()) {
    return Status::Corruption(fmt::format("{} names {} columns but types {}", what,
                                          reply.columns_size(), reply.column_types_size()));
  }
  if (!reply.data().empty() || reply.raw_bytes() != 0) {
    return Status::Corruption(what +
                              " carries rows (a primary that does not know summary_only? "
                              "update it)");
  }
  if (reply.rows() > 0 && reply.summary_sha256().size() != 64) {
    return Status::Corruption(
        fmt::format("{} has {} rows but no SHA-256 (a primary that does not know summary_only? "
                    "update it)",
                    what, reply.rows()));
  }
  Summary summary;
  for (const pb::BootstrapColumn& c : reply.column_types()) {
    summary.columns.push_back(
        bootstrap::Column{c.name(), c.data_type(), c.column_type(), c.generated(), c.charset()});
  }
  summary.rows = reply.rows();
  summary.sha256 = reply.summary_sha256();
  summary.exact = reply.summary_exact();
  summary.last_key.assign(reply.last_key().begin(), reply.last_key().end());
  summary.table_done = reply.table_done();
  return summary;
}

Result<BootstrapClient::Chunk> BootstrapClient::ChunkOf(const pb::BootstrapReply& reply,
                                                        const std::string& what) {
  if (reply.raw_bytes() > kMaxChunkBytes) {
    return Status::Corruption(fmt::format("{} claims {} bytes, over the limit of {} MiB", what,
                                          reply.raw_bytes(), kMaxChunkBytes >> 20));
  }
  Chunk chunk;
  RS_RETURN_IF_ERROR(Decompress(reply.data(), reply.raw_bytes(), what, &chunk.text));
  if (reply.column_types_size() != reply.columns_size()) {
    return Status::Corruption(fmt::format("{} names {} columns but types {}", what,
                                          reply.columns_size(), reply.column_types_size()));
  }
  for (const pb::BootstrapColumn& c : reply.column_types()) {
    chunk.columns.push_back(
        bootstrap::Column{c.name(), c.data_type(), c.column_type(), c.generated(), c.charset()});
  }
  chunk.rows = reply.rows();
  chunk.raw_bytes = reply.raw_bytes();
  chunk.wire_bytes = reply.data().size();
  chunk.last_key.assign(reply.last_key().begin(), reply.last_key().end());
  chunk.table_done = reply.table_done();
  chunk.more_pieces = reply.more_pieces();
  return chunk;
}

Status BootstrapClient::EndRound(uint64_t round) {
  pb::BootstrapRequest request;
  request.set_op(pb::BootstrapRequest::END_ROUND);
  request.set_round(round);
  return Ask(std::move(request)).status();
}

Result<std::vector<pb::BootstrapObject>> BootstrapClient::ReadObjects(
    const BinlogPosition& point, bool users, const std::vector<std::string>& exclude_users) {
  pb::BootstrapRequest request;
  request.set_op(pb::BootstrapRequest::READ_OBJECTS);
  request.set_point_file(point.file);
  request.set_point_offset(point.offset);
  request.set_users(users);
  for (const std::string& name : exclude_users) request.add_exclude_users(name);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  return std::vector<pb::BootstrapObject>(reply.objects().begin(), reply.objects().end());
}

Result<BinlogPosition> BootstrapClient::Position() {
  pb::BootstrapRequest request;
  request.set_op(pb::BootstrapRequest::POSITION);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  if (reply.point_file().empty()) {
    return Status::Corruption(
        fmt::format("the primary at {} answered POSITION without a position", endpoint_));
  }
  return BinlogPosition{reply.point_file(), reply.point_offset()};
}

Result<BootstrapClient::ChangedPaths> BootstrapClient::ChangedPathsAfter(uint64_t after_seq) {
  pb::BootstrapRequest request;
  request.set_op(pb::BootstrapRequest::CHANGED_PATHS);
  request.set_after_seq(after_seq);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  return ChangedPaths{.paths = {reply.changed_paths().begin(), reply.changed_paths().end()},
                      .complete = reply.changed_complete()};
}

Result<std::vector<BootstrapClient::RepositoryFile>> BootstrapClient::ReadFiles(
    const std::vector<std::string>& paths, uint64_t offset, uint64_t max_bytes) {
  pb::BootstrapRequest request;
  request.set_op(pb::BootstrapRequest::READ_FILES);
  for (const std::string& path : paths) request.add_paths(path);
  request.set_offset(offset);
  request.set_max_bytes(max_bytes);
  RS_ASSIGN_OR_RETURN(pb::BootstrapReply reply, Ask(std::move(request)));
  if (!paths.empty() && reply.files_size() == 0) {
    return Status::Corruption(fmt::format(
        "the primary at {} answered READ_FILES without any path (a primary that does not know "
        "READ_FILES? update it)",
        endpoint_));
  }
  if (static_cast<size_t>(reply.files_size()) > paths.size()) {
    return Status::Corruption(
        fmt::format("the primary at {} answered READ_FILES with {} paths "
                    "for {} asked",
                    endpoint_, reply.files_size(), paths.size()));
  }
  std::vector<RepositoryFile> files;
  files.reserve(reply.files_size());
  for (int i = 0; i < reply.files_size(); ++i) {
    pb::BootstrapFile& got = *reply.mutable_files(i);
    if (got.path() != paths[i]) {
      return Status::Corruption(
          fmt::format("the primary at {} answered READ_FILES for '{}' with "
                      "'{}'",
                      endpoint_, paths[i], got.path()));
    }
    RepositoryFile file;
    file.path = std::move(*got.mutable_path());
    file.kind = got.kind();
    file.meta = got.meta();
    file.link_target = std::move(*got.mutable_link_target());
    file.offset = got.offset();
    file.eof = got.eof();
    file.children.assign(std::make_move_iterator(got.mutable_children()->begin()),
                         std::make_move_iterator(got.mutable_children()->end()));
    const std::string what =
        fmt::format("the content of '{}' from the primary at {}", file.path, endpoint_);
    if (got.raw_bytes() > kMaxChunkBytes) {
      return Status::Corruption(fmt::format("{} claims {} bytes, over the limit of {} MiB", what,
                                            got.raw_bytes(), kMaxChunkBytes >> 20));
    }
    if (!got.compressed()) {
      if (got.data().size() != got.raw_bytes()) {
        return Status::Corruption(fmt::format("{} is {} bytes, not the {} it claims", what,
                                              got.data().size(), got.raw_bytes()));
      }
      file.data = std::move(*got.mutable_data());
    } else {
      RS_RETURN_IF_ERROR(Decompress(got.data(), got.raw_bytes(), what, &file.data));
    }
    files.push_back(std::move(file));
  }
  return files;
}

Result<pb::BootstrapReply> BootstrapClient::Ask(pb::BootstrapRequest request) {
  const uint64_t id = ++next_id_;
  request.set_request_id(id);
  ++requests_;
  pb::Envelope hello;
  hello.set_version(kProtocolVersion);
  hello.mutable_hello()->set_node_name(options_.node_name);
  hello.mutable_hello()->set_tree_only(true);
  pb::Envelope envelope;
  envelope.set_version(kProtocolVersion);
  *envelope.mutable_bootstrap_request() = std::move(request);
  // A connection that ends after the request was sent takes the request (and the primary's
  // rounds of this peer) with it: no reply will come, whatever reply_timeout says.
  const uint64_t lost = transport_->connections_lost();
  Status sent = transport_->Send(hello);
  if (sent.ok()) sent = transport_->Send(envelope);
  if (!sent.ok()) {
    return Status::Network(fmt::format(
        "the primary's replsyncd at {} cannot be reached ({}); is it running, and is [transport] "
        "primary right?",
        endpoint_, sent.message()));
  }
  Clock& clock = *options_.clock;
  const auto deadline = clock.Now() + options_.reply_timeout;
  while (clock.Now() < deadline) {
    pb::Envelope message;
    auto got = transport_->Receive(&message, std::chrono::milliseconds(200));
    if (!got.ok()) {
      return Status::Network(
          fmt::format("receive from the primary at {}: {}", endpoint_, got.status().message()));
    }
    if (*got && message.has_error() && message.error().fatal()) {
      return Status::Aborted(
          fmt::format("the primary at {}: {}", endpoint_, message.error().message()));
    }
    if (!*got || !message.has_bootstrap_reply() || message.bootstrap_reply().request_id() != id) {
      if (transport_->connections_lost() != lost) {
        return Status::Network(
            fmt::format("the connection to the primary's replsyncd at {} ended before it answered "
                        "(it stopped or restarted): the request was lost with it",
                        endpoint_));
      }
      continue;
    }
    pb::BootstrapReply reply = std::move(*message.mutable_bootstrap_reply());
    if (!reply.error().empty()) {
      const std::string text = fmt::format("the primary at {}: {}", endpoint_, reply.error());
      return reply.retry() ? Status::Unavailable(text) : Status::Aborted(text);
    }
    return reply;
  }
  return Status::Network(
      fmt::format("the primary's replsyncd at {} did not answer within {} s (an older replsyncd "
                  "that does not serve bootstrap, or it is busy)",
                  endpoint_, options_.reply_timeout.count()));
}

}  // namespace replsync

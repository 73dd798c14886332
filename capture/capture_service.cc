#include "capture/capture_service.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <utility>
#include <variant>

#include "sync/text.h"

namespace replsync::capture {

namespace {

constexpr char kMetaFile[] = "capture.file";
constexpr char kMetaOffset[] = "capture.offset";
constexpr char kMetaGtid[] = "capture.gtid";
constexpr char kMetaLastCompleteSeq[] = "capture.last_complete_seq";

// The checkpoint as journal meta (capture.last_complete_seq is the writer's to add).
JournalWriter::Meta CheckpointMeta(const BinlogPosition& position, const std::string& gtid) {
  return {{kMetaFile, position.file},
          {kMetaOffset, std::to_string(position.offset)},
          {kMetaGtid, gtid}};
}

}  // namespace

const char* CaptureStateName(CaptureState state) {
  switch (state) {
    case CaptureState::kStopped:
      return "stopped";
    case CaptureState::kConnecting:
      return "connecting";
    case CaptureState::kRunning:
      return "running";
    case CaptureState::kJournalFull:
      return "journal full";
    case CaptureState::kFinished:
      return "finished";
    case CaptureState::kFailed:
      return "failed";
  }
  return "unknown";
}

CaptureService::CaptureService(Journal* journal, BinlogSourceFactory* factory,
                               CaptureOptions options, Clock& clock)
    : journal_(journal),
      factory_(factory),
      options_(std::move(options)),
      clock_(clock),
      writer_(journal,
              JournalWriter::Options{
                  .batch_entries = options_.batch_entries,
                  .batch_bytes = options_.batch_bytes,
                  .batch_delay = options_.batch_delay,
                  .meta_delay = options_.checkpoint_delay,
                  .queue_bytes = options_.queue_bytes,
                  .last_complete_key = kMetaLastCompleteSeq,
                  .on_written = [this](const JournalWriter::Written& w) { OnWritten(w); },
                  .on_failure = [this](const Status& s) { OnWriterFailed(s); },
                  .after_journal_write = options_.after_journal_write,
              },
              clock),
      builder_(
          options_.databases, options_.part_bytes,
          [this](BuiltItem item) { return Queue(std::move(item)); },
          [this](const Event& event) { OnEvent(event); }) {}

CaptureService::~CaptureService() { Stop(); }

Status CaptureService::Start() {
  if (started_) return Status::Internal("capture service already started");
  RS_ASSIGN_OR_RETURN(std::optional<std::string> file, journal_->GetMeta(kMetaFile));
  RS_ASSIGN_OR_RETURN(std::optional<std::string> offset, journal_->GetMeta(kMetaOffset));
  RS_ASSIGN_OR_RETURN(std::optional<std::string> gtid, journal_->GetMeta(kMetaGtid));
  RS_ASSIGN_OR_RETURN(std::optional<std::string> complete, journal_->GetMeta(kMetaLastCompleteSeq));
  committed_ = BinlogPosition{};
  committed_gtid_.clear();
  if (file.has_value()) {
    uint64_t value = 0;
    if (!offset.has_value() || !ParseU64(*offset, &value)) {
      return Status::Corruption(fmt::format("journal {}: capture checkpoint {} has no valid offset",
                                            journal_->path(), *file));
    }
    committed_ = BinlogPosition{*file, value};
    committed_gtid_ = gtid.value_or("");
  }
  uint64_t last_complete = journal_->last_seq();
  if (complete.has_value() && !ParseU64(*complete, &last_complete)) {
    return Status::Corruption(
        fmt::format("journal {}: bad {} '{}'", journal_->path(), kMetaLastCompleteSeq, *complete));
  }
  if (last_complete > journal_->last_seq()) {
    return Status::Corruption(fmt::format(
        "journal {}: the capture checkpoint names sequence {} but the journal ends at {}",
        journal_->path(), last_complete, journal_->last_seq()));
  }
  if (journal_->last_seq() > last_complete) {
    spdlog::warn(
        "capture: removing journal entries {}..{}: parts of a transaction that was not complete "
        "when capture stopped; it is read again from {}",
        last_complete + 1, journal_->last_seq(),
        committed_.empty() ? std::string("the start") : committed_.ToString());
    RS_RETURN_IF_ERROR(journal_->TruncateAfter(last_complete));
    AfterJournalWrite("TruncateAfter");
  }
  if (committed_.empty()) {
    spdlog::info(
        "capture: the journal {} has no checkpoint; starting at the current position of {}",
        journal_->path(), factory_->Describe());
  } else {
    spdlog::info("capture: resuming {} at {}{} (journal sequence {})", factory_->Describe(),
                 committed_.ToString(), committed_gtid_.empty() ? "" : ", GTID " + committed_gtid_,
                 last_complete);
  }
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    durable_ = committed_;
    durable_gtid_ = committed_gtid_;
    read_position_ = committed_;
    state_ = CaptureState::kConnecting;
    error_ = Status::Ok();
  }
  {
    std::lock_guard<std::mutex> lock(queued_mu_);
    queued_.clear();
  }
  RS_RETURN_IF_ERROR(writer_.Start(last_complete));
  stop_ = false;
  factory_->Resume();
  started_ = true;
  capture_thread_ = std::thread([this] { CaptureThread(); });
  return Status::Ok();
}

void CaptureService::Stop() {
  if (!started_) return;
  stop_ = true;
  writer_.Abort();
  factory_->Interrupt();
  WakePause();
  if (capture_thread_.joinable()) capture_thread_.join();
  writer_.Stop();
  started_ = false;
  std::lock_guard<std::mutex> lock(status_mu_);
  if (state_ != CaptureState::kFailed && state_ != CaptureState::kFinished) {
    state_ = CaptureState::kStopped;
  }
  spdlog::info("capture: stopped at {} (journal sequence {})", durable_.ToString(),
               last_complete_seq());
}

Status CaptureService::Wait() {
  if (capture_thread_.joinable()) capture_thread_.join();
  // The writer stays for retention until Stop; what the capture queued is written.
  writer_.WaitDrained();
  std::lock_guard<std::mutex> lock(status_mu_);
  return error_;
}

CaptureStatus CaptureService::status() const {
  CaptureStatus s;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    s.state = state_;
    s.checkpoint = durable_;
    s.checkpoint_gtid = durable_gtid_;
    s.read_position = read_position_;
    s.last_error = error_.ok() ? std::string() : error_.ToString();
  }
  s.source = factory_->Describe();
  s.last_complete_seq = last_complete_seq();
  s.transactions = transactions_.load();
  s.skipped_transactions = skipped_.load();
  s.rows = rows_.load();
  s.bytes = bytes_.load();
  s.journal_bytes = journal_->bytes();
  s.journal_max_bytes = options_.journal_max_bytes;
  s.journal_full = journal_->full();
  int64_t last = last_event_time_.load();
  if (!idle_.load() && last > 0) {
    const int64_t now = clock_.UnixMillis() / 1000;
    s.lag_seconds = std::max<int64_t>(0, now - last);
  }
  return s;
}

void CaptureService::Fail(const Status& status) {
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (state_ != CaptureState::kFailed) {
      error_ = status;
      spdlog::error("capture stopped: {}", status.ToString());
    }
    state_ = CaptureState::kFailed;
  }
  durable_cv_.notify_all();
}

void CaptureService::SetState(CaptureState state) {
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    if (state_ != CaptureState::kFailed) state_ = state;
  }
  durable_cv_.notify_all();
}

void CaptureService::AfterJournalWrite(const char* op) const {
  if (options_.after_journal_write) options_.after_journal_write(op);
}

bool CaptureService::Pause(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(pause_mu_);
  return !clock_.WaitFor(pause_cv_, lock, timeout, [this] { return stop_.load(); });
}

void CaptureService::WakePause() {
  {
    std::lock_guard<std::mutex> lock(pause_mu_);  // orders stop_ before a Pause's check
  }
  pause_cv_.notify_all();
}

// ---- capture thread

void CaptureService::CaptureThread() {
  auto delay = options_.retry_min;
  while (!stop_) {
    progressed_ = false;
    Status s = RunSource();
    if (stop_) break;
    if (s.ok()) {
      spdlog::info("capture: {} read to its end at {}", factory_->Describe(),
                   committed_.ToString());
      SetState(CaptureState::kFinished);
      break;
    }
    Status discarded = DiscardUnfinished();
    if (!discarded.ok()) {
      Fail(discarded);
      break;
    }
    if (!s.retryable()) {
      if (s.IsNotFound()) {
        Fail(s.WithContext(fmt::format(
            "capture cannot continue from {}: the binlog it needs is gone (purged); nothing was "
            "skipped",
            committed_.ToString())));
      } else {
        Fail(s);
      }
      break;
    }
    if (progressed_) delay = options_.retry_min;
    {
      std::lock_guard<std::mutex> lock(status_mu_);
      error_ = s;
      if (state_ != CaptureState::kFailed) state_ = CaptureState::kConnecting;
    }
    spdlog::warn("capture: {}; retrying {} from {} in {} ms", s.ToString(), factory_->Describe(),
                 committed_.empty() ? std::string("its current position") : committed_.ToString(),
                 delay.count());
    Pause(delay);
    delay = std::min(delay * 2, options_.retry_max);
  }
  // Whatever transaction was open is dropped: it is read again after a restart.
  builder_.DropUnfinished();
  writer_.EndOfInput();
}

Status CaptureService::RunSource() {
  SetState(CaptureState::kConnecting);
  if (committed_.empty()) {
    RS_ASSIGN_OR_RETURN(BinlogPosition start, factory_->CurrentPosition());
    if (options_.before_first_checkpoint) options_.before_first_checkpoint();
    // The first checkpoint, durable before anything is read: a restart before the first
    // transaction must not start later. The writer writes it (with its own last_complete_seq:
    // file groups may be appended meanwhile) and publishes it as durable_ (OnWritten).
    JournalWriter::Item item;
    item.completes = true;
    item.request = JournalWriter::Request::kNow;
    item.meta = CheckpointMeta(start, "");
    Queued queued;
    queued.has_checkpoint = true;
    queued.position = start;
    RS_ASSIGN_OR_RETURN(uint64_t ticket, Enqueue(std::move(item), std::move(queued)));
    RS_RETURN_IF_ERROR(writer_.WaitWritten(ticket));
    spdlog::info("capture: starting at the current position of {}: {}", factory_->Describe(),
                 start.ToString());
    committed_ = start;
    committed_gtid_.clear();
  }
  RS_ASSIGN_OR_RETURN(std::unique_ptr<BinlogSource> source, factory_->Open(committed_));
  spdlog::info("capture: reading {} from {}", source->Describe(), committed_.ToString());
  builder_.Reset();
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    state_ = state_ == CaptureState::kFailed ? state_ : CaptureState::kRunning;
    error_ = Status::Ok();
  }
  RawEvent raw;
  while (!stop_) {
    RS_RETURN_IF_ERROR(WaitForJournalSpace(builder_.in_transaction()));
    RS_ASSIGN_OR_RETURN(bool more, source->Next(&raw));
    if (!more) {
      // A finite source ended; an open transaction is incomplete and dropped.
      return Status::Ok();
    }
    RS_RETURN_IF_ERROR(builder_.Feed(raw));
  }
  return Status::Aborted("capture stopped");
}

void CaptureService::OnEvent(const Event& event) {
  progressed_ = true;
  if (std::holds_alternative<HeartbeatEvent>(event.body)) {
    idle_ = true;
  } else if ((event.header.flags & kFlagArtificial) == 0 && event.header.timestamp != 0) {
    last_event_time_ = event.header.timestamp;
    idle_ = false;
  }
  std::lock_guard<std::mutex> lock(status_mu_);
  read_position_.file.assign(event.position.file);
  read_position_.offset = event.next_offset;
}

Status CaptureService::Queue(BuiltItem built) {
  JournalWriter::Item item;
  Queued queued;
  item.has_entry = built.has_entry();
  item.entry = std::move(built.entry);
  item.completes = built.completes();
  queued.transaction = built.kind == BuiltItem::Kind::kTransaction;
  queued.skipped = built.kind == BuiltItem::Kind::kSkipped;
  queued.rows = built.rows;
  queued.event_bytes = built.event_bytes;
  queued.first_part_begin = built.first_part_begin;
  if (built.completes()) {
    committed_ = built.checkpoint;
    if (built.kind != BuiltItem::Kind::kRotation) committed_gtid_ = built.gtid;
    item.meta = CheckpointMeta(committed_, committed_gtid_);
    queued.has_checkpoint = true;
    queued.position = committed_;
    queued.gtid = committed_gtid_;
  }
  return Enqueue(std::move(item), std::move(queued)).status();
}

Result<uint64_t> CaptureService::Enqueue(JournalWriter::Item item, Queued queued) {
  // Remembered before the writer can take the item: OnWritten pops it.
  {
    std::lock_guard<std::mutex> lock(queued_mu_);
    queued_.push_back(std::move(queued));
  }
  Result<uint64_t> ticket = writer_.Submit(std::move(item));
  if (!ticket.ok()) {
    std::lock_guard<std::mutex> lock(queued_mu_);
    if (!queued_.empty()) queued_.pop_back();
  }
  return ticket;
}

void CaptureService::OnWritten(const JournalWriter::Written& written) {
  std::optional<Queued> checkpoint;
  uint64_t transactions = 0, skipped = 0, rows = 0, bytes = 0;
  std::vector<std::pair<uint64_t, BinlogPosition>> begins;
  {
    std::lock_guard<std::mutex> lock(queued_mu_);
    for (size_t i = 0; i < written.items && !queued_.empty(); ++i) {
      Queued& queued = queued_.front();
      if (!queued.first_part_begin.empty() && i < written.item_seqs.size() &&
          written.item_seqs[i] != 0) {
        begins.emplace_back(written.item_seqs[i], queued.first_part_begin);
      }
      transactions += queued.transaction ? 1 : 0;
      skipped += queued.skipped ? 1 : 0;
      rows += queued.rows;
      bytes += queued.event_bytes;
      if (queued.has_checkpoint) checkpoint = std::move(queued);
      queued_.pop_front();
    }
  }
  transactions_ += transactions;
  skipped_ += skipped;
  rows_ += rows;
  bytes_ += bytes;
  {
    std::lock_guard<std::mutex> lock(status_mu_);
    for (const auto& [seq, begin] : begins) recent_begins_.Add(seq, begin);
    recent_begins_.Written(written.last_seq);
    if (checkpoint.has_value()) {
      durable_ = checkpoint->position;
      durable_gtid_ = checkpoint->gtid;
    }
  }
  if (checkpoint.has_value()) durable_cv_.notify_all();
  if (written.completed_group && options_.on_append) options_.on_append();
}

void CaptureService::OnWriterFailed(const Status& status) {
  Fail(status);
  stop_ = true;
  factory_->Interrupt();
  WakePause();
}

Status CaptureService::WaitForJournalSpace(bool in_transaction) {
  while (true) {
    if (!journal_->full()) {
      if (state_full_) {
        state_full_ = false;
        SetState(CaptureState::kRunning);
        spdlog::info("capture: journal {} has room again ({} of {} bytes); reading resumes",
                     journal_->path(), journal_->bytes(), options_.journal_max_bytes);
      }
      return Status::Ok();
    }
    // A transaction larger than the whole cap: nothing complete is left to free, so waiting
    // would never end. Let it through, loudly.
    if (in_transaction && journal_->first_seq() > last_complete_seq()) {
      if (!oversize_reported_) {
        oversize_reported_ = true;
        spdlog::error(
            "capture: the journal {} is over its cap ({} of {} bytes) with parts of one "
            "transaction only; writing on past the cap until the transaction is complete. Raise "
            "the journal size cap above the largest transaction",
            journal_->path(), journal_->bytes(), options_.journal_max_bytes);
      }
      return Status::Ok();
    }
    oversize_reported_ = false;
    if (!state_full_) {
      state_full_ = true;
      last_full_report_ = Clock::TimePoint{};
    }
    SetState(CaptureState::kJournalFull);
    const Clock::TimePoint now = clock_.Now();
    if (last_full_report_ == Clock::TimePoint{} ||
        now - last_full_report_ >= options_.full_report_interval) {
      last_full_report_ = now;
      spdlog::error(
          "capture paused: journal {} is full ({} of {} bytes, entries {}..{}); the binlog is "
          "not read past {} until secondaries acknowledge entries and the shipper deletes them. "
          "Check that every secondary is running and connected (replsync status), or raise the "
          "journal size cap. Nothing is dropped, but the server may purge binlogs capture has "
          "not read yet",
          journal_->path(), journal_->bytes(), options_.journal_max_bytes, journal_->first_seq(),
          journal_->last_seq(), read_position().ToString());
    }
    if (!Pause(options_.full_poll)) return Status::Aborted("capture stopped");
  }
}

BinlogPosition CaptureService::read_position() const {
  std::lock_guard<std::mutex> lock(status_mu_);
  return read_position_;
}

Status CaptureService::DiscardUnfinished() {
  builder_.DropUnfinished();
  // The writer removes the parts (JournalWriter::Request::kDiscard), after everything queued
  // before the request and after an external group it is appending: only the transaction's
  // parts are removed.
  JournalWriter::Item item;
  item.request = JournalWriter::Request::kDiscard;
  RS_ASSIGN_OR_RETURN(uint64_t ticket, Enqueue(std::move(item), Queued{}));
  return writer_.WaitWritten(ticket);
}

Result<uint64_t> CaptureService::FirstSeqAtOrAfter(const BinlogPosition& point,
                                                   std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(status_mu_);
  const bool there = clock_.WaitFor(durable_cv_, lock, timeout, [&] {
    return (!durable_.empty() && !(durable_ < point)) || state_ == CaptureState::kFailed ||
           state_ == CaptureState::kStopped;
  });
  if (!there || durable_.empty() || durable_ < point) {
    return Status::Unavailable(fmt::format(
        "the capture has not journaled the binlog up to {} (it stands at {}, {}){}; try again",
        point.ToString(), durable_.empty() ? std::string("nowhere yet") : durable_.ToString(),
        CaptureStateName(state_), error_.ok() ? std::string() : ": " + error_.message()));
  }
  // From what the capture wrote, not from the journal: retention may have deleted the entries
  // after the point already (a secondary held them durably).
  std::optional<uint64_t> seq = recent_begins_.FirstAtOrAfter(point);
  if (!seq) {
    return Status::Unavailable(fmt::format(
        "more transactions were journaled since {} than the capture remembers; try again",
        point.ToString()));
  }
  return *seq;
}

}  // namespace replsync::capture

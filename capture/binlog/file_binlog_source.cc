#include "capture/binlog/file_binlog_source.h"

#include <fmt/format.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "capture/binlog/binlog_event.h"

namespace replsync::capture {

namespace {

constexpr char kMagic[4] = {'\xfe', 'b', 'i', 'n'};
constexpr uint64_t kUnknownSize = UINT64_MAX;
// Reading an event whose size we cannot check against the file (gzip) grows the buffer at
// most this much past what has actually arrived, so a corrupt length cannot allocate 4 GiB.
constexpr size_t kGrowStep = size_t{1} << 20;
// Size of one read(2): large enough that system-call cost vanishes, small enough for the cache.
constexpr size_t kReadBlock = size_t{256} << 10;

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

uint32_t LoadLe32(const char* p) {
  const auto* u = reinterpret_cast<const uint8_t*>(p);
  return uint32_t{u[0]} | uint32_t{u[1]} << 8 | uint32_t{u[2]} << 16 | uint32_t{u[3]} << 24;
}

}  // namespace

// One open file, plain (read(2) on a descriptor) or gzip (zlib gzread). Unbuffered: the caller
// reads in large blocks.
class FileBinlogSource::Reader {
 public:
  static Result<std::unique_ptr<Reader>> Open(const std::string& path) {
    auto reader = std::unique_ptr<Reader>(new Reader(path));
    if (EndsWith(path, ".gz")) {
      reader->gz_ = gzopen(path.c_str(), "rb");
      if (reader->gz_ == nullptr) {
        return Status::IoError(fmt::format("open binlog file {}: {}", path, std::strerror(errno)));
      }
      gzbuffer(reader->gz_, 256 * 1024);
    } else {
      reader->fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
      if (reader->fd_ < 0) {
        int err = errno;
        if (err == ENOENT) {
          return Status::NotFound(fmt::format("open binlog file {}: {}", path, std::strerror(err)));
        }
        return Status::IoError(fmt::format("open binlog file {}: {}", path, std::strerror(err)));
      }
      struct stat st;
      if (fstat(reader->fd_, &st) == 0 && S_ISREG(st.st_mode)) {
        reader->size_ = static_cast<uint64_t>(st.st_size);
        posix_fadvise(reader->fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
      }
    }
    return reader;
  }

  ~Reader() {
    if (fd_ >= 0) ::close(fd_);
    if (gz_ != nullptr) gzclose(gz_);
  }

  // Reads up to n bytes into dst; fewer only at the end of the file.
  Result<size_t> Read(char* dst, size_t n) {
    size_t done = 0;
    if (fd_ >= 0) {
      while (done < n) {
        ssize_t got = ::read(fd_, dst + done, n - done);
        if (got < 0) {
          if (errno == EINTR) continue;
          return Status::IoError(
              fmt::format("read binlog file {}: {}", path_, std::strerror(errno)));
        }
        if (got == 0) break;
        done += static_cast<size_t>(got);
      }
      return done;
    }
    while (done < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1u << 30));
      int got = gzread(gz_, dst + done, chunk);
      if (got < 0) {
        int code = 0;
        const char* msg = gzerror(gz_, &code);
        if (code == Z_DATA_ERROR || code == Z_BUF_ERROR) {
          return Status::Corruption(fmt::format("read binlog file {}: {}", path_, msg));
        }
        return Status::IoError(fmt::format("read binlog file {}: {}", path_, msg));
      }
      if (got == 0) {
        // A gzip stream that stops before its end reads as a short file; zlib reports it as
        // Z_BUF_ERROR ("unexpected end of file").
        int code = Z_OK;
        const char* msg = gzerror(gz_, &code);
        if (code == Z_BUF_ERROR) {
          return Status::Corruption(
              fmt::format("read binlog file {}: truncated gzip stream ({})", path_, msg));
        }
        break;
      }
      done += static_cast<size_t>(got);
    }
    return done;
  }

  // Moves forward by n bytes. Returns the number of bytes actually skipped (fewer at the end).
  Result<uint64_t> Skip(uint64_t n, std::vector<char>* scratch) {
    if (fd_ >= 0 && size_ != kUnknownSize) {
      off_t cur = lseek(fd_, 0, SEEK_CUR);
      if (cur < 0) {
        return Status::IoError(fmt::format("seek binlog file {}: {}", path_, std::strerror(errno)));
      }
      uint64_t pos = static_cast<uint64_t>(cur);
      uint64_t target = std::min(size_, pos + n);
      if (lseek(fd_, static_cast<off_t>(target), SEEK_SET) < 0) {
        return Status::IoError(fmt::format("seek binlog file {}: {}", path_, std::strerror(errno)));
      }
      return target - pos;
    }
    if (scratch->size() < 64 * 1024) scratch->resize(64 * 1024);
    uint64_t skipped = 0;
    while (skipped < n) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(n - skipped, scratch->size()));
      RS_ASSIGN_OR_RETURN(size_t got, Read(scratch->data(), want));
      skipped += got;
      if (got < want) break;
    }
    return skipped;
  }

  // The file's size when known (plain regular files), else kUnknownSize.
  uint64_t size() const { return size_; }

 private:
  explicit Reader(std::string path) : path_(std::move(path)) {}

  std::string path_;
  int fd_ = -1;
  gzFile gz_ = nullptr;
  uint64_t size_ = kUnknownSize;
};

FileBinlogSource::FileBinlogSource(std::vector<std::string> paths) : paths_(std::move(paths)) {}
FileBinlogSource::~FileBinlogSource() = default;

Result<std::unique_ptr<FileBinlogSource>> FileBinlogSource::Open(std::vector<std::string> paths) {
  if (paths.empty()) return Status::InvalidArgument("no binlog files given");
  for (const std::string& path : paths) {
    struct stat st;
    if (stat(path.c_str(), &st) != 0) {
      int err = errno;
      if (err == ENOENT || err == ENOTDIR) {
        return Status::NotFound(fmt::format("binlog file {}: {}", path, std::strerror(err)));
      }
      return Status::IoError(fmt::format("binlog file {}: {}", path, std::strerror(err)));
    }
    if (S_ISDIR(st.st_mode)) {
      return Status::InvalidArgument(fmt::format("binlog file {}: is a directory", path));
    }
    if (access(path.c_str(), R_OK) != 0) {
      return Status::IoError(fmt::format("binlog file {}: {}", path, std::strerror(errno)));
    }
  }
  return std::unique_ptr<FileBinlogSource>(new FileBinlogSource(std::move(paths)));
}

std::string FileBinlogSource::Describe() const {
  return "file " + paths_[std::min(index_, paths_.size() - 1)];
}

Status FileBinlogSource::OpenFile(size_t index) {
  const std::string& path = paths_[index];
  RS_ASSIGN_OR_RETURN(reader_, Reader::Open(path));
  begin_ = end_ = 0;
  char magic[sizeof(kMagic)];
  RS_ASSIGN_OR_RETURN(size_t got, reader_->Read(magic, sizeof(magic)));
  if (got < sizeof(magic) || std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) {
    reader_.reset();
    return Status::Corruption(fmt::format("{}: not a binlog file: bad magic", path));
  }
  std::string_view name = path;
  size_t slash = name.rfind('/');
  if (slash != std::string_view::npos) name.remove_prefix(slash + 1);
  if (EndsWith(name, ".gz")) name.remove_suffix(3);
  file_name_.assign(name);
  offset_ = sizeof(kMagic);
  if (index == 0 && first_offset_ != 0) {
    if (first_offset_ < sizeof(kMagic)) {
      reader_.reset();
      return Status::InvalidArgument(
          fmt::format("{}: start offset {} is inside the magic number", path, first_offset_));
    }
    uint64_t want = first_offset_ - sizeof(kMagic);
    RS_ASSIGN_OR_RETURN(uint64_t skipped, reader_->Skip(want, &buffer_));
    if (skipped < want) {
      reader_.reset();
      return Status::InvalidArgument(
          fmt::format("{}: start offset {} is past the end of the file", path, first_offset_));
    }
    offset_ = first_offset_;
  }
  return Status::Ok();
}

Result<size_t> FileBinlogSource::Fill(size_t n) {
  if (end_ - begin_ >= n) return end_ - begin_;
  // Move what is unread to the front, then read whole blocks behind it.
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  size_t want = std::max(n, kReadBlock);
  if (buffer_.size() > 2 * kReadBlock && want <= kReadBlock && end_ <= kReadBlock) {
    // Give back what a single huge event needed once it has been handed out.
    buffer_.resize(kReadBlock);
    buffer_.shrink_to_fit();
  }
  if (buffer_.size() < want) buffer_.resize(want);
  while (end_ < n) {
    RS_ASSIGN_OR_RETURN(size_t got, reader_->Read(buffer_.data() + end_, buffer_.size() - end_));
    if (got == 0) break;
    end_ += got;
  }
  return end_;
}

Result<bool> FileBinlogSource::Next(RawEvent* event) {
  while (true) {
    if (!reader_) {
      if (index_ >= paths_.size()) return false;
      RS_RETURN_IF_ERROR(OpenFile(index_));
    }
    const std::string& path = paths_[index_];
    RS_ASSIGN_OR_RETURN(size_t avail, Fill(kEventHeaderSize));
    if (avail == 0) {  // clean end of this file
      reader_.reset();
      ++index_;
      continue;
    }
    if (avail < kEventHeaderSize) {
      return Status::Corruption(fmt::format(
          "{}:{}: truncated event: {} of the 19 header bytes before the end of the file", path,
          offset_, avail));
    }
    uint32_t size = LoadLe32(buffer_.data() + begin_ + 9);
    if (size < kEventHeaderSize) {
      return Status::Corruption(fmt::format(
          "{}:{}: event length {} is shorter than the 19-byte header", path, offset_, size));
    }
    uint64_t file_size = reader_->size();
    if (file_size != kUnknownSize && offset_ + size > file_size) {
      return Status::Corruption(
          fmt::format("{}:{}: truncated event: length {} runs past the end of the file ({} bytes)",
                      path, offset_, size, file_size));
    }
    if (file_size == kUnknownSize) {
      // The length cannot be checked against the file: grow step by step as bytes arrive, so
      // a corrupt length cannot make us allocate gigabytes.
      while (avail < size) {
        size_t step = std::min<size_t>(size, avail + std::max(avail, kGrowStep));
        RS_ASSIGN_OR_RETURN(size_t now, Fill(step));
        if (now == avail) break;
        avail = now;
      }
    } else {
      RS_ASSIGN_OR_RETURN(avail, Fill(size));
    }
    if (avail < size) {
      return Status::Corruption(fmt::format(
          "{}:{}: truncated event: length {} but only {} bytes before the end of the file", path,
          offset_, size, avail));
    }
    event->data = std::string_view(buffer_.data() + begin_, size);
    begin_ += size;
    event->file = file_name_;
    event->offset = offset_;
    event->next_offset = offset_ + size;
    offset_ += size;
    return true;
  }
}

}  // namespace replsync::capture

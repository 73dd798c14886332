// libFuzzer target: feeds arbitrary bytes to the binlog decoder as a binlog file and decodes every
// row of every ROWS event. Any input must end in a clean error or a clean end: no crash, no hang,
// no out-of-bounds read (run under AddressSanitizer).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/row_decoder.h"

namespace {

// Frames `data` as binlog events (no magic expected) and hands them to the decoder.
class BytesSource : public replsync::capture::BinlogSource {
 public:
  explicit BytesSource(std::string_view data) : data_(data) {}
  replsync::Result<bool> Next(replsync::capture::RawEvent* event) override {
    if (pos_ >= data_.size()) return false;
    if (data_.size() - pos_ < replsync::capture::kEventHeaderSize) {
      return replsync::Status::Corruption("truncated header");
    }
    const auto* p = reinterpret_cast<const uint8_t*>(data_.data() + pos_);
    uint32_t size = p[9] | p[10] << 8 | p[11] << 16 | static_cast<uint32_t>(p[12]) << 24;
    if (size < replsync::capture::kEventHeaderSize || size > data_.size() - pos_) {
      return replsync::Status::Corruption("bad event size");
    }
    event->data = data_.substr(pos_, size);
    event->file = "fuzz.000001";
    event->offset = pos_ + 4;
    pos_ += size;
    event->next_offset = pos_ + 4;
    return true;
  }
  std::string Describe() const override { return "fuzz input"; }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace replsync::capture;
  std::string_view bytes(reinterpret_cast<const char*>(data), size);
  // Inputs that start with the binlog magic are whole files (the seed corpus); skip it.
  if (bytes.size() >= 4 && bytes.substr(0, 4) == std::string_view("\xfe" "bin", 4)) {
    bytes.remove_prefix(4);
  }
  BinlogReader reader(std::make_unique<BytesSource>(bytes));
  RowDecoder rows;
  RowImage before, after;
  for (int i = 0; i < 100000; ++i) {
    auto event = reader.Next();
    if (!event.ok() || *event == nullptr) break;
    if (const auto* r = std::get_if<RowsEvent>(&(*event)->body)) {
      rows.Reset(*r);
      for (;;) {
        auto more = rows.Next(&before, &after);
        if (!more.ok() || !*more) break;
      }
    }
  }
  return 0;
}

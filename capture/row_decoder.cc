// PLACEHOLDER: replaced by the real row decoder.
#include "capture/row_decoder.h"

namespace replsync::capture {
RowDecoder::RowDecoder() = default;
void RowDecoder::Reset(const RowsEvent& event) { event_ = &event; }
Result<bool> RowDecoder::Next(RowImage* before, RowImage* after) {
  return Status::Internal("not implemented");
}
}  // namespace replsync::capture

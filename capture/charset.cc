// PLACEHOLDER: replaced by the real charset table.
#include "capture/charset.h"

namespace replsync::capture {
const char* CharsetOfCollation(uint32_t collation) { return nullptr; }
void AppendAsUtf8(uint32_t collation, std::string_view text, std::string* out) {
  out->append(text);
}
}  // namespace replsync::capture

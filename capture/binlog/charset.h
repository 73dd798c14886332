// Character sets of MySQL and MariaDB collation ids, and conversion of column text to UTF-8.
//
// Covers the collation ids of MariaDB 10.3-11.x (including the 2048+ UCA 14.0 ids) and
// MySQL 5.6-9.x (including the utf8mb4_0900 family, 255-323).
// Thread-safety: thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "sync/status.h"

namespace replsync::capture {

// The character set of a collation id: "utf8mb4", "utf8mb3", "latin1", "binary", ...
// Returns nullptr for an unknown id.
const char* CharsetOfCollation(uint32_t collation);

// Appends `text`, stored in the character set of `collation`, to *out as UTF-8. UTF-8 and ASCII
// input is copied as it is; other character sets are converted with iconv. Bytes that are not
// valid in the source character set become U+FFFD rather than failing. An unknown collation
// (0 included) is treated as UTF-8.
void AppendAsUtf8(uint32_t collation, std::string_view text, std::string* out);

}  // namespace replsync::capture

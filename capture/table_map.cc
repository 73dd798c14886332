// PLACEHOLDER: replaced by the real implementation.
#include "capture/table_map.h"

namespace replsync::capture {
const char* ColumnTypeName(ColumnType type) { return "?"; }
bool ColumnDef::is_text() const { return false; }
bool ColumnDef::is_numeric() const { return false; }
}  // namespace replsync::capture

// StatementSnippet: how the SQL sessions (MysqlSession, MariadbConnection) quote a statement in an
// error message. Thread-safety: a plain function.
#pragma once

#include <string>

namespace replsync {

// The start of a statement for an error message (its first 300 bytes and its size); a BINLOG
// statement is only named with its size (its base64 is of no use to a reader).
std::string StatementSnippet(const std::string& sql);

}  // namespace replsync

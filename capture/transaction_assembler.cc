// PLACEHOLDER: replaced by the real assembler.
#include "capture/transaction_assembler.h"

namespace replsync::capture {
Status TransactionAssembler::Feed(const Event& event) { return Status::Internal("not implemented"); }
}  // namespace replsync::capture

// PLACEHOLDER: replaced by helper E.
#include "sync/journal.h"

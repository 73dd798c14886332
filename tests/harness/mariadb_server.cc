// PLACEHOLDER: replaced by the real harness.
#include "tests/harness/mariadb_server.h"

// replsync: the command-line tool. Thin: parses the command line and calls tools/cli.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>

#include "tools/cli/binlog_dump.h"
#include "tools/cli/bootstrap_command.h"
#include "tools/cli/keygen_command.h"
#include "tools/cli/promote_command.h"
#include "tools/cli/rejoin_command.h"
#include "tools/cli/repair_command.h"
#include "tools/cli/status_command.h"
#include "tools/cli/switchover_command.h"
#include "tools/cli/verify_command.h"

int main(int argc, char** argv) {
  CLI::App app{
      "replsync: inspect and operate a replsync high-availability pair.\n"
      "Run 'replsync COMMAND --help' for what each command does."};
  app.set_version_flag("--version", std::string("replsync ") + REPLSYNC_VERSION);
  app.require_subcommand(1);

  CLI::App* binlog = app.add_subcommand("binlog", "Read MySQL/MariaDB binary logs");
  binlog->require_subcommand(1);
  replsync::cli::DumpOptions dump;
  CLI::App* dump_cmd = binlog->add_subcommand(
      "dump",
      "Print decoded binlog events (row changes and DDL), like mysqlbinlog -v.\n"
      "Read binlog files with --file, or a live server (the [mysql] section of --config)\n"
      "from --from FILE:POS or --gtid GTID (default: the server's current position).");
  auto* files_opt = dump_cmd->add_option("--file", dump.files, "Binlog files to read, in order")
                        ->check(CLI::ExistingFile);
  auto* config_opt =
      dump_cmd->add_option("--config", dump.config, "Node configuration file (live server)")
          ->check(CLI::ExistingFile);
  files_opt->excludes(config_opt);
  dump_cmd->add_option("--from", dump.from, "Start position FILE:POS (with --config)")
      ->needs(config_opt);
  dump_cmd->add_option("--gtid", dump.gtid, "Start after this MariaDB GTID, e.g. 0-1-5")
      ->needs(config_opt);
  dump_cmd->add_flag("--follow", dump.follow, "Keep waiting for new events (with --config)")
      ->needs(config_opt);
  dump_cmd->add_flag("--json", dump.json, "One JSON object per row change or DDL statement");
  dump_cmd->add_flag("--decode-only", dump.decode_only,
                     "Decode every row but print only a summary (events, rows, rate)");

  std::string status_config;
  bool status_json = false;
  CLI::App* status_cmd = app.add_subcommand(
      "status",
      "Show what this node's replsyncd reports: role, binlog and journal positions, what the\n"
      "secondary received and applied, lag in transactions, bytes and seconds, peers.\n"
      "Exit 0: the daemon is running; 1: it is not (its last status is shown); 2: no status.");
  status_cmd->add_option("--config", status_config, "Node configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  status_cmd->add_flag("--json", status_json, "Print the status as JSON (schemas/status.md)");

  replsync::cli::VerifyCommandOptions verify;
  CLI::App* verify_cmd = app.add_subcommand(
      "verify",
      "Prove that the secondary holds the primary's rows and files, each compared at a consistent\n"
      "point while changes keep flowing, or list what differs (schemas/verify.md). Run it on the\n"
      "secondary, with its configuration ([primary_mysql] says how to reach the primary's\n"
      "database; the primary's replsyncd at [transport] primary answers for its files) and its\n"
      "replsyncd running. Files are compared by metadata, and by content where size or mtime\n"
      "differ (--deep: every file reread on both sides). One verify or repair at a time per node.\n"
      "Exit 0: consistent; 1: differences found; 2: could not verify.");
  verify_cmd->add_option("--config", verify.config_path, "The secondary's configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  verify_cmd->add_flag("--json", verify.json, "Print the result as JSON (schemas/verify.md)");
  verify_cmd->add_flag("--database-only", verify.database_only, "Compare the database only");
  verify_cmd->add_flag("--files-only", verify.files_only, "Compare the repository's files only");
  verify_cmd->add_flag("--deep", verify.deep,
                       "Reread and hash every file on both nodes (slow: reads both repositories)");
  verify_cmd
      ->add_option("--barrier-timeout", verify.barrier_timeout_s,
                   "Seconds to wait for the secondary's applier to reach the point")
      ->default_val(120);
  verify_cmd
      ->add_option("--max-running", verify.max_running,
                   "Before each chunk, wait while a server runs more other queries than this "
                   "(Threads_running less verify's session and replication's; 0: never wait)")
      ->default_val(25);
  verify_cmd
      ->add_option("--max-wait", verify.max_wait_s,
                   "Seconds one such wait lasts at most; then verify goes on with a warning")
      ->default_val(60);
  verify_cmd->add_flag("--resume", verify.resume,
                       "Go on from an interrupted verify: the tables it finished are reported as "
                       "it found them, the table it was in continues where it stopped");

  replsync::cli::RepairCommandOptions repair;
  CLI::App* repair_cmd = app.add_subcommand(
      "repair",
      "Make the secondary's database and files equal to the primary's: verify's comparison, with\n"
      "the secondary's applier held at the point until the differing rows are fixed (rows\n"
      "missing or changed are copied from the primary's snapshot, extra rows deleted;\n"
      "sql_log_bin=0, one transaction per table), then replication goes on; differing files are\n"
      "journaled again whole by the primary and applied through the normal stream (atomic\n"
      "replace; a file the primary does not have is deleted), then checked again.\n"
      "Run it on the secondary like verify (schemas/verify.md, \"Repair\").\n"
      "Exit 0: repaired or nothing to repair; 1: --dry-run found differences; 2: could not\n"
      "repair (the reason is printed).");
  repair_cmd->add_option("--config", repair.config_path, "The secondary's configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  repair_cmd->add_flag("--json", repair.json, "Print the result as JSON (schemas/verify.md)");
  repair_cmd->add_flag("--database-only", repair.database_only, "Repair the database only");
  repair_cmd->add_flag("--files-only", repair.files_only, "Repair the repository's files only");
  repair_cmd->add_flag("--deep", repair.deep,
                       "Find differing files by rereading every file on both nodes");
  repair_cmd->add_flag(
      "--dry-run", repair.dry_run,
      "Print the SQL it would run, one statement per line, and the files it would\n"
      "replace or delete, and change nothing");
  repair_cmd
      ->add_option("--barrier-timeout", repair.barrier_timeout_s,
                   "Seconds to wait for the secondary's applier to reach the point")
      ->default_val(120);
  repair_cmd
      ->add_option("--max-running", repair.max_running,
                   "Before each chunk compared, wait while a server runs more other queries "
                   "than this (Threads_running less repair's session and replication's; 0: "
                   "never wait)")
      ->default_val(25);
  repair_cmd
      ->add_option("--max-wait", repair.max_wait_s,
                   "Seconds one such wait lasts at most; then repair goes on with a warning")
      ->default_val(60);
  repair_cmd
      ->add_option("--max-rows", repair.max_rows,
                   "Differing rows repaired per table at most; a table with more is refused")
      ->default_val(1000000);

  std::string keygen_out;
  std::string keygen_public;
  CLI::App* keygen_cmd = app.add_subcommand(
      "keygen",
      "Make this node's CURVE key pair, which it uses on every ZeroMQ connection to prove who it\n"
      "is and to encrypt the change stream. The secret key goes to --out (created with mode\n"
      "0600; an existing file is never overwritten, exit 2); the public key is printed alone on\n"
      "the last line, e.g.\n"
      "  replsync keygen --out /etc/replsync/node1.key | tail -1\n"
      "Point this node's [transport] secret_key_file at the file, and put the public key in\n"
      "every other node's configuration as [peers.<this node's name>] public_key.\n"
      "  replsync keygen --public /etc/replsync/node1.key\n"
      "prints the public key of an existing secret key file again.\n"
      "Exit 0: key written (or printed); 2: nothing written (the reason is printed).");
  CLI::Option* out_option =
      keygen_cmd->add_option("--out", keygen_out, "Where to write the secret key (a new file)");
  CLI::Option* public_option = keygen_cmd->add_option(
      "--public", keygen_public, "Print the public key of this existing secret key file");
  out_option->excludes(public_option);
  keygen_cmd->require_option(1);

  replsync::cli::BootstrapCommandOptions bootstrap;
  CLI::App* bootstrap_cmd = app.add_subcommand(
      "bootstrap",
      "Make this secondary an exact copy of its primary while the primary keeps working, and\n"
      "join it to the change stream with no gap (schemas/bootstrap.md): databases, tables and\n"
      "rows (copied in consistent snapshots, compressed over the replication link: no database\n"
      "link to the primary is needed), views, routines, triggers, events, the users with\n"
      "privileges on the databases, then the repository. Run it on the secondary, with both\n"
      "replsyncd running; the secondary's daemon does the copy and shows it in `replsync\n"
      "status`. Interrupted (this command, either daemon or either server), it goes on where it\n"
      "stood; run the command again to follow it.\n"
      "A secondary that already holds data is refused (exit 1, with what it would replace)\n"
      "unless --force (replace it) or --resync (keep it, copy only what differs).\n"
      "Exit 0: the secondary holds the primary's data and follows; 1: refused; 2: could not\n"
      "(the reason and what to do are printed).");
  bootstrap_cmd->add_option("--config", bootstrap.config_path, "The secondary's configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  bootstrap_cmd->add_flag("--json", bootstrap.json,
                          "One JSON object per progress step, the last one with exit_code");
  auto* force_flag = bootstrap_cmd->add_flag(
      "--force", bootstrap.force,
      "Replace what the secondary holds (its replicated databases are dropped first)");
  auto* resync_flag = bootstrap_cmd->add_flag(
      "--resync", bootstrap.resync,
      "Keep what the secondary holds; compare chunk by chunk and copy only what differs");
  force_flag->excludes(resync_flag);

  replsync::cli::PromoteCommandOptions promote;
  CLI::App* promote_cmd = app.add_subcommand(
      "promote",
      "Make this secondary the primary (schemas/failover.md): its replsyncd stops receiving,\n"
      "applies everything it received, makes its database writable, raises the group's epoch\n"
      "(a primary that learns of a higher epoch fences itself: read-only, serving no one) and\n"
      "serves the other nodes. It refuses when the primary was known (from its heartbeats) to\n"
      "hold more than this node received, and says how much would be lost; --force promotes\n"
      "anyway and records the lost range. Point the failover switch at this node's\n"
      "/health/primary.\n"
      "Exit 0: promoted; 1: refused (the reason is printed); 2: could not.");
  promote_cmd->add_option("--config", promote.config_path, "This secondary's configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  promote_cmd->add_flag("--force", promote.force,
                        "Promote even though the primary held more than this node received");
  promote_cmd->add_flag("--json", promote.json, "Print the daemon's reply as one JSON object");

  replsync::cli::RejoinCommandOptions rejoin;
  CLI::App* rejoin_cmd = app.add_subcommand(
      "rejoin",
      "On a fenced old primary (schemas/failover.md), while its replsyncd runs: find its\n"
      "unshipped tail - the transactions in its own binlog after the fork point (where the\n"
      "promoted node's data left this node's) that changed the replicated databases, each with\n"
      "its GTID, positions, tables and row counts, and the file changes its journal holds after\n"
      "the fork - and quarantine it in <state_dir>/quarantine/<epoch>/ (tail.binlog, which\n"
      "mariadb-binlog reads; copies of the files; report.json), never merging it. Then the node\n"
      "becomes a secondary of the promoted node and a bootstrap --resync makes its rows and\n"
      "files the new primary's; the command shows its progress.\n"
      "Exit 0: the node follows the new primary (with --dry-run: no tail); 1: refused, or with\n"
      "--dry-run a tail (listed); 2: could not (the reason is printed).");
  rejoin_cmd->add_option("--config", rejoin.config_path, "This node's configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  rejoin_cmd->add_flag("--dry-run", rejoin.dry_run, "Report the tail; change nothing");
  rejoin_cmd->add_flag("--json", rejoin.json,
                       "The report as one JSON object, then the bootstrap's progress objects");

  replsync::cli::SwitchoverCommandOptions switchover;
  CLI::App* switchover_cmd = app.add_subcommand(
      "switchover",
      "On the primary, a planned change of primary with nothing lost (schemas/failover.md):\n"
      "its replsyncd refuses writes (read_only=ON, /health/primary 503), lets the capture reach\n"
      "the binlog's end, and asks the secondary to promote itself once it has applied all of\n"
      "it; the promoted node's epoch then fences this node, which rejoins it as a secondary\n"
      "(as `replsync rejoin`: its tail is empty). Prints how long writes were refused.\n"
      "Exit 0: this node follows the new primary; 1: refused (the reason is printed); 2: could\n"
      "not (on a timeout the primary takes writes again).");
  switchover_cmd->add_option("--config", switchover.config_path, "The primary's configuration file")
      ->required()
      ->check(CLI::ExistingFile);
  switchover_cmd->add_option("--to", switchover.target,
                             "The secondary to promote ([peers] name; needed with several)");
  switchover_cmd->add_flag("--json", switchover.json,
                           "The daemon's replies and the bootstrap's progress as JSON objects");

  CLI11_PARSE(app, argc, argv);

  if (keygen_cmd->parsed()) {
    if (!keygen_public.empty())
      return replsync::cli::RunShowPublicKey(keygen_public, stdout, stderr);
    return replsync::cli::RunKeygen(keygen_out, stdout, stderr);
  }

  if (bootstrap_cmd->parsed()) return replsync::cli::RunBootstrap(bootstrap, stdout);
  if (promote_cmd->parsed()) return replsync::cli::RunPromote(promote, stdout);
  if (rejoin_cmd->parsed()) return replsync::cli::RunRejoin(rejoin, stdout);
  if (switchover_cmd->parsed()) return replsync::cli::RunSwitchover(switchover, stdout);
  if (status_cmd->parsed()) return replsync::cli::RunStatus(status_config, status_json, stdout);
  if (verify_cmd->parsed()) return replsync::cli::RunVerify(verify, stdout);
  if (repair_cmd->parsed()) return replsync::cli::RunRepair(repair, stdout);

  if (dump_cmd->parsed()) {
    if (dump.files.empty() && dump.config.empty()) {
      std::fprintf(stderr, "replsync binlog dump: give --file PATH... or --config FILE\n");
      return 2;
    }
    replsync::Status st = replsync::cli::RunBinlogDump(dump, stdout);
    std::fflush(stdout);
    if (!st.ok()) {
      std::fprintf(stderr, "replsync binlog dump: %s\n", st.message().c_str());
      return 1;
    }
    return 0;
  }
  return 0;
}

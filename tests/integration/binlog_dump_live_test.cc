// `replsync binlog dump --json` end to end: a real MariaDB server writes every column type with
// edge values, updates, deletes, DDL between row events and a 50 000-row transaction; the real
// `replsync` binary dumps its binlog files and the live server; the JSON rows, replayed in order,
// must give exactly the rows the server returns (values compared through SQL: HEX for bytes,
// CAST for exact text, UNIX_TIMESTAMP for TIMESTAMP). The format is schemas/binlog_dump.md.
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "tests/harness/config_file.h"
#include "tests/harness/mariadb_server.h"

namespace replsync {

namespace {

using testing::MariadbServer;

constexpr const char* kDb = "types";
constexpr const char* kNull = "\\N";  // how MariadbServer::Query shows NULL

// How a column's value is compared: the SQL expression that gives the server's canonical text,
// and how the JSON value is turned into the same text.
enum class Kind {
  kInt,        // CAST AS CHAR / JSON integer
  kDecimal,    // CAST AS CHAR / JSON string of digits
  kFloat,      // the float32 value, "%.9g"
  kDouble,     // the float64 value, "%.17g"
  kText,       // CAST AS CHAR (temporal types, ENUM labels) / JSON string
  kTimestamp,  // UNIX_TIMESTAMP, as UTC text / JSON string
  kYear,       // integer
  kBit,        // CAST AS UNSIGNED / JSON unsigned integer
  kSet,        // CAST AS CHAR "a,c" / JSON array of labels joined by ","
  kString,     // HEX(CONVERT(c USING utf8mb4)) / JSON string's UTF-8 bytes in hex
  kBytes,      // HEX(c) / {"base64": ...} decoded, in hex
};

struct Column {
  std::string name;
  std::string type;  // SQL type for CREATE TABLE
  Kind kind;
};

struct Table {
  std::string name;
  std::vector<Column> columns;
  std::string primary_key;  // "" = none
};

std::string Hex(std::string_view bytes) {
  static const char* kDigits = "0123456789ABCDEF";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

bool Base64Decode(std::string_view in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  if (in.size() % 4 != 0) return false;
  out->clear();
  for (size_t i = 0; i < in.size(); i += 4) {
    int v[4];
    int pad = 0;
    for (int k = 0; k < 4; ++k) {
      char c = in[i + k];
      if (c == '=') {
        if (i + 4 != in.size() || k < 2) return false;
        v[k] = 0;
        ++pad;
      } else {
        if (pad > 0) return false;
        v[k] = value(c);
        if (v[k] < 0) return false;
      }
    }
    uint32_t n = (v[0] << 18) | (v[1] << 12) | (v[2] << 6) | v[3];
    out->push_back(static_cast<char>(n >> 16));
    if (pad < 2) out->push_back(static_cast<char>((n >> 8) & 0xFF));
    if (pad < 1) out->push_back(static_cast<char>(n & 0xFF));
  }
  return true;
}

std::string FloatText(double d) { return fmt::format("{:.9g}", static_cast<float>(d)); }
std::string DoubleText(double d) { return fmt::format("{:.17g}", d); }

std::string SqlExpression(const Column& c) {
  std::string n = "`" + c.name + "`";
  switch (c.kind) {
    case Kind::kInt:
    case Kind::kDecimal:
    case Kind::kText:
    case Kind::kYear:
    case Kind::kSet:
      return "CAST(" + n + " AS CHAR)";
    case Kind::kFloat:
      return "CAST(" + n + " AS DOUBLE)";
    case Kind::kDouble:
      return n;
    case Kind::kTimestamp:
      return "UNIX_TIMESTAMP(" + n + ")";
    case Kind::kBit:
      return "CAST(" + n + " AS UNSIGNED)";
    case Kind::kString:
      return "HEX(CONVERT(" + n + " USING utf8mb4))";
    case Kind::kBytes:
      return "HEX(" + n + ")";
  }
  return n;
}

// The server's text for a column (from SqlExpression) in canonical form.
std::string CanonicalFromServer(const Column& c, const std::string& text) {
  if (text == kNull) return kNull;
  switch (c.kind) {
    case Kind::kFloat:
      return FloatText(std::strtod(text.c_str(), nullptr));
    case Kind::kDouble:
      return DoubleText(std::strtod(text.c_str(), nullptr));
    case Kind::kYear:
      return std::to_string(std::stoi(text));
    case Kind::kTimestamp: {
      // "1704047400.123": seconds since the epoch with the column's fractional digits.
      size_t dot = text.find('.');
      std::string frac = dot == std::string::npos ? "" : text.substr(dot);
      long long seconds = std::stoll(text.substr(0, dot));
      if (seconds == 0) return "0000-00-00 00:00:00" + frac;  // the zero TIMESTAMP
      time_t t = static_cast<time_t>(seconds);
      struct tm tm;
      gmtime_r(&t, &tm);
      char buf[64];
      std::strftime(buf, sizeof(buf), "%Y-%m-%d %H:%M:%S", &tm);
      return buf + frac;
    }
    default:
      return text;
  }
}

// A JSON value in canonical form; "" with *error set when its shape is wrong for the column.
std::string CanonicalFromJson(const Column& c, const rapidjson::Value& v, std::string* error) {
  if (v.IsNull()) return kNull;
  auto wrong = [&](const char* want) {
    *error = fmt::format("column {}: expected {}", c.name, want);
    return std::string();
  };
  switch (c.kind) {
    case Kind::kInt:
    case Kind::kYear:
      if (v.IsInt64()) return std::to_string(v.GetInt64());
      if (v.IsUint64()) return std::to_string(v.GetUint64());
      return wrong("an integer");
    case Kind::kBit:
      if (v.IsUint64()) return std::to_string(v.GetUint64());
      return wrong("an unsigned integer");
    case Kind::kFloat:
      if (v.IsNumber()) return FloatText(v.GetDouble());
      return wrong("a number");
    case Kind::kDouble:
      if (v.IsNumber()) return DoubleText(v.GetDouble());
      return wrong("a number");
    case Kind::kDecimal:
    case Kind::kText:
    case Kind::kTimestamp:
      if (v.IsString()) return std::string(v.GetString(), v.GetStringLength());
      return wrong("a string");
    case Kind::kSet: {
      if (!v.IsArray()) return wrong("an array of labels");
      std::string out;
      for (const auto& label : v.GetArray()) {
        if (!label.IsString()) return wrong("an array of labels");
        if (!out.empty()) out += ",";
        out.append(label.GetString(), label.GetStringLength());
      }
      return out;
    }
    case Kind::kString:
      if (v.IsString()) return Hex(std::string_view(v.GetString(), v.GetStringLength()));
      return wrong("a string");
    case Kind::kBytes: {
      if (!v.IsObject() || !v.HasMember("base64") || !v["base64"].IsString() ||
          v.MemberCount() != 1) {
        return wrong("{\"base64\": ...}");
      }
      std::string bytes;
      if (!Base64Decode(std::string_view(v["base64"].GetString(), v["base64"].GetStringLength()),
                        &bytes)) {
        return wrong("valid padded base64");
      }
      return Hex(bytes);
    }
  }
  return wrong("a known kind");
}

using Row = std::vector<std::string>;  // canonical values in the table's column order

// The tables of the test: every column type MariaDB has, with the comparison for each.
std::vector<Table> Tables() {
  return {
      {"ints",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"t", "TINYINT", Kind::kInt},
        {"tu", "TINYINT UNSIGNED", Kind::kInt},
        {"s", "SMALLINT", Kind::kInt},
        {"su", "SMALLINT UNSIGNED", Kind::kInt},
        {"m", "MEDIUMINT", Kind::kInt},
        {"mu", "MEDIUMINT UNSIGNED", Kind::kInt},
        {"i", "INT", Kind::kInt},
        {"iu", "INT UNSIGNED", Kind::kInt},
        {"b", "BIGINT", Kind::kInt},
        {"bu", "BIGINT UNSIGNED", Kind::kInt}},
       "id"},
      {"nums",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"d65", "DECIMAL(65,30)", Kind::kDecimal},
        {"d52", "DECIMAL(5,2)", Kind::kDecimal},
        {"d10", "DECIMAL(10,0)", Kind::kDecimal},
        {"d3", "DECIMAL(20,10)", Kind::kDecimal},
        {"f", "FLOAT", Kind::kFloat},
        {"dbl", "DOUBLE", Kind::kDouble}},
       "id"},
      {"times",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"d", "DATE", Kind::kText},
        {"t0", "TIME", Kind::kText},
        {"t6", "TIME(6)", Kind::kText},
        {"t3", "TIME(3)", Kind::kText},
        {"dt0", "DATETIME", Kind::kText},
        {"dt6", "DATETIME(6)", Kind::kText},
        {"dt2", "DATETIME(2)", Kind::kText},
        {"ts0", "TIMESTAMP NULL DEFAULT NULL", Kind::kTimestamp},
        {"ts3", "TIMESTAMP(3) NULL DEFAULT NULL", Kind::kTimestamp},
        {"ts6", "TIMESTAMP(6) NULL DEFAULT NULL", Kind::kTimestamp},
        {"y", "YEAR", Kind::kYear}},
       "id"},
      {"bits",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"b1", "BIT(1)", Kind::kBit},
        {"b5", "BIT(5)", Kind::kBit},
        {"b17", "BIT(17)", Kind::kBit},
        {"b64", "BIT(64)", Kind::kBit},
        {"e", "ENUM('small','medium','large')", Kind::kText},
        {"s", "SET('a','b','c','d')", Kind::kSet},
        {"s9", "SET('s1','s2','s3','s4','s5','s6','s7','s8','s9')", Kind::kSet}},
       "id"},
      {"texts",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"c", "CHAR(10) CHARACTER SET utf8mb4", Kind::kString},
        {"v", "VARCHAR(50) CHARACTER SET utf8mb4", Kind::kString},
        {"v300", "VARCHAR(300) CHARACTER SET utf8mb4", Kind::kString},
        {"tt", "TINYTEXT CHARACTER SET utf8mb4", Kind::kString},
        {"t", "TEXT CHARACTER SET utf8mb4", Kind::kString},
        {"mt", "MEDIUMTEXT CHARACTER SET utf8mb4", Kind::kString},
        {"lt", "LONGTEXT CHARACTER SET utf8mb4", Kind::kString},
        {"l1", "VARCHAR(20) CHARACTER SET latin1", Kind::kString},
        {"l2", "CHAR(5) CHARACTER SET latin1", Kind::kString},
        {"u3", "VARCHAR(10) CHARACTER SET utf8mb3", Kind::kString},
        {"j", "JSON", Kind::kString}},
       "id"},
      {"bins",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"b", "BINARY(4)", Kind::kBytes},
        {"vb", "VARBINARY(10)", Kind::kBytes},
        {"tb", "TINYBLOB", Kind::kBytes},
        {"bl", "BLOB", Kind::kBytes},
        {"mb", "MEDIUMBLOB", Kind::kBytes},
        {"lb", "LONGBLOB", Kind::kBytes},
        {"cb", "CHAR(3) CHARACTER SET binary", Kind::kBytes},
        {"g", "GEOMETRY", Kind::kBytes},
        {"pt", "POINT", Kind::kBytes}},
       "id"},
      {"nopk",
       {{"a", "INT", Kind::kInt}, {"b", "VARCHAR(10) CHARACTER SET utf8mb4", Kind::kString}},
       ""},
      {"alt",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"a", "INT", Kind::kInt},
        {"extra", "VARCHAR(10) CHARACTER SET utf8mb4", Kind::kString}},  // added by ALTER
       "id"},
      {"big",
       {{"id", "INT NOT NULL", Kind::kInt},
        {"v", "VARCHAR(20) CHARACTER SET utf8mb4", Kind::kString},
        {"n", "BIGINT", Kind::kInt}},
       "id"},
  };
}

constexpr int kBigRows = 50000;

// The changes the test makes: every statement runs with sql_mode='' (zero dates) and a
// non-UTC session time zone (TIMESTAMP must come out in UTC regardless).
std::vector<std::string> Workload() {
  std::vector<std::string> sql;
  sql.push_back("SET NAMES utf8mb4; SET sql_mode = ''; SET time_zone = '+05:30'");
  sql.push_back(fmt::format("CREATE DATABASE {}", kDb));
  for (const auto& t : Tables()) {
    std::string cols;
    for (const auto& c : t.columns) {
      if (t.name == "alt" && c.name == "extra") continue;  // added later
      cols += (cols.empty() ? "" : ", ") + ("`" + c.name + "` " + c.type);
    }
    if (!t.primary_key.empty()) cols += ", PRIMARY KEY (" + t.primary_key + ")";
    sql.push_back(fmt::format("CREATE TABLE {}.{} ({}) ENGINE=InnoDB", kDb, t.name, cols));
  }
  sql.push_back(fmt::format("USE {}", kDb));
  // Integers: minimums, maximums, zero, -1, NULL.
  sql.push_back(
      "INSERT INTO ints VALUES "
      "(1, -128, 0, -32768, 0, -8388608, 0, -2147483648, 0, -9223372036854775808, 0), "
      "(2, 127, 255, 32767, 65535, 8388607, 16777215, 2147483647, 4294967295, "
      "9223372036854775807, 18446744073709551615), "
      "(3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), "
      "(4, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1), "
      "(5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
  sql.push_back(
      "INSERT INTO nums VALUES "
      "(1, '-12345678901234567890123456789012345.123456789012345678901234567890', -999.99, "
      "9999999999, '-0.0000000001', 3.14, 0.1), "
      "(2, '99999999999999999999999999999999999.999999999999999999999999999999', 999.99, "
      "-9999999999, '1234567890.0123456789', -1.5e-10, -1.7976931348623157e308), "
      "(3, '0.000000000000000000000000000001', 0, 0, 0, 3.4028234e38, 5e-324), "
      "(4, 0, -0.01, -1, '-9999999999.9999999999', -0, 2.2250738585072014e-308), "
      "(5, NULL, NULL, NULL, NULL, NULL, NULL)");
  sql.push_back(
      "INSERT INTO times VALUES "
      "(1, '0000-00-00', '838:59:59', '-838:59:58.999999', '-00:00:00.001', "
      "'0000-00-00 00:00:00', '2024-02-29 12:34:56.123400', '9999-12-31 23:59:59.99', "
      "'2024-01-01 00:00:00', '2024-01-01 00:00:00.123', '2024-07-01 12:00:00.000001', 2024), "
      "(2, '2024-02-29', '-838:59:59', '838:59:58.999999', '00:00:00', "
      "'1000-01-01 00:00:00', '0000-00-00 00:00:00', '2000-01-01 00:00:00.01', "
      "'2038-01-19 08:44:07', '1970-01-01 05:30:01.000', '0000-00-00 00:00:00', 1901), "
      "(3, '9999-12-31', '00:00:00', '-00:00:00.000001', '12:34:56.789', "
      "'2024-02-29 23:59:59', '1999-12-31 23:59:59.999999', NULL, "
      "'0000-00-00 00:00:00', NULL, '2000-02-29 00:00:00.5', 2155), "
      "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0)");
  sql.push_back(
      "INSERT INTO bits VALUES "
      "(1, b'1', b'10101', b'10000000000000001', "
      "b'1111111111111111111111111111111111111111111111111111111111111111', 'medium', 'a,c', "
      "'s1,s9'), "
      "(2, b'0', b'0', 0, 0, 'small', '', ''), "
      "(3, 1, 31, 131071, 9223372036854775808, 'large', 'a,b,c,d', 's8'), "
      "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
      "(5, 0, 1, 2, 3, 'no such label', 'b', 's2,s3')");  // sql_mode '': the error value ''
  sql.push_back(
      "INSERT INTO texts VALUES "
      "(1, '😀', 'é中文字😀', REPEAT('ü', 300), 'tiny', 'text 中', 'medium', 'long 😀', "
      "'café', 'àéî', 'ü€', '{\"a\": [1, 2, {\"b\": null}], \"c\": \"é\"}'), "
      "(2, '', '', '', '', '', '', '', '', '', '', '[]'), "
      "(3, 'ab', 'trailing  ', 'x', 'y', REPEAT('long text ', 1000), REPEAT('m', 70000), "
      "REPEAT('L', 100000), 'ÿ', 'x', 'a', 'null'), "
      "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL), "
      "(5, 'quote\"\\\\', 'tab\\tnl\\ncr\\r', 'ctl\\Z', '\\0zero', '', '', '', '', '', '', "
      "'\"str\"')");
  sql.push_back(
      "INSERT INTO bins VALUES "
      "(1, x'0102', x'00', x'', x'00FF00', x'000000', CONCAT(REPEAT(x'00FF10', 349525), x'00'), "
      "x'00', ST_GeomFromText('POINT(1 2)'), ST_GeomFromText('POINT(-1.5 1e300)')), "
      "(2, x'FFFFFFFF', x'00010203040506070809', REPEAT(x'AB', 255), REPEAT(x'00', 65535), "
      "REPEAT(x'01', 70000), x'', x'000000', "
      "ST_GeomFromText('LINESTRING(0 0, 1 1, 2 3)'), ST_GeomFromText('POINT(0 0)')), "
      "(3, x'00000000', '', NULL, NULL, NULL, NULL, 'ab', "
      "ST_GeomFromText('POLYGON((0 0, 4 0, 4 4, 0 4, 0 0), (1 1, 2 1, 2 2, 1 1))'), NULL), "
      "(4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)");
  sql.push_back("INSERT INTO nopk VALUES (1, 'x'), (1, 'x'), (2, NULL), (NULL, NULL)");
  sql.push_back("INSERT INTO alt VALUES (1, 10), (2, 20)");
  // Updates and deletes.
  sql.push_back(
      "UPDATE ints SET t = t + 1, bu = bu + 1 WHERE id = 1; "
      "UPDATE nums SET d65 = -d65, f = 2.5, dbl = -dbl WHERE id IN (1, 2); "
      "DELETE FROM nums WHERE id = 3; "
      "UPDATE times SET ts3 = '2030-05-05 05:05:05.555', y = 1999 WHERE id = 1; "
      "UPDATE bits SET s = 'd', b64 = 1 WHERE id = 2; "
      "UPDATE texts SET v = CONCAT(v, '+'), lt = NULL WHERE id = 1; "
      "DELETE FROM texts WHERE id = 2; "
      "UPDATE bins SET lb = x'00', b = x'AA' WHERE id = 1; "
      "UPDATE nopk SET b = 'y' WHERE a = 2; "
      "DELETE FROM nopk WHERE a = 1 LIMIT 1");
  // DDL between row events of one table.
  sql.push_back(
      "BEGIN; INSERT INTO alt VALUES (3, 30); UPDATE alt SET a = 11 WHERE id = 1; COMMIT; "
      "ALTER TABLE alt ADD COLUMN extra VARCHAR(10) CHARACTER SET utf8mb4; "
      "INSERT INTO alt VALUES (4, 40, 'new'); UPDATE alt SET extra = 'set' WHERE id = 2; "
      "DELETE FROM alt WHERE id = 3");
  // A large transaction.
  sql.push_back(
      fmt::format("BEGIN; INSERT INTO big SELECT seq, CONCAT('v', seq), seq * 1000000007 "
                  "FROM seq_1_to_{}; UPDATE big SET v = 'changed' WHERE id % 1000 = 0; "
                  "DELETE FROM big WHERE id % 5000 = 1; COMMIT",
                  kBigRows));
  return sql;
}

struct Output {
  int exit_code = -1;
  std::vector<std::string> lines;
  std::string stderr_text;
};

// Runs the replsync binary with `args`, collecting stdout lines and stderr.
Output RunReplsync(const std::string& args, const std::string& scratch_dir) {
  Output out;
  std::string binary = REPLSYNC_BINARY_DIR "/tools/replsync";
  if (access(binary.c_str(), X_OK) != 0) {
    out.stderr_text = binary + " is missing: build the `replsync` target before this test";
    return out;
  }
  std::string err_path = scratch_dir + "/stderr.txt";
  std::string cmd = binary + " " + args + " 2>" + err_path;
  FILE* pipe = popen(cmd.c_str(), "r");
  if (pipe == nullptr) {
    out.stderr_text = std::string("popen: ") + std::strerror(errno);
    return out;
  }
  std::string data;
  char buf[1 << 16];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), pipe)) > 0) data.append(buf, n);
  int status = pclose(pipe);
  out.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  std::ifstream err(err_path);
  std::stringstream ss;
  ss << err.rdbuf();
  out.stderr_text = ss.str();
  size_t start = 0;
  while (start < data.size()) {
    size_t end = data.find('\n', start);
    if (end == std::string::npos) {
      out.lines.push_back(data.substr(start));  // an unterminated last line (a bug)
      out.lines.back() += "<no newline>";
      break;
    }
    out.lines.push_back(data.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

class BinlogDumpLiveTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto server = MariadbServer::Start();
    ASSERT_TRUE(server.ok()) << server.status().ToString();
    server_ = server->release();
    for (const auto& sql : Workload()) {
      Status st = server_->Execute(sql);
      ASSERT_TRUE(st.ok()) << st.ToString();
    }
    ASSERT_TRUE(server_->Execute("FLUSH BINARY LOGS").ok());
    auto files = server_->BinlogFiles();
    ASSERT_TRUE(files.ok()) << files.status().ToString();
    std::string args = "binlog dump --json";
    for (const auto& f : *files) args += " --file " + f;
    scratch_ = server_->data_dir() + "/../scratch";
    std::filesystem::create_directories(scratch_);
    file_dump_ = new Output(RunReplsync(args, scratch_));
  }

  static void TearDownTestSuite() {
    delete file_dump_;
    file_dump_ = nullptr;
    delete server_;
    server_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(server_, nullptr);
    ASSERT_NE(file_dump_, nullptr);
    ASSERT_EQ(file_dump_->exit_code, 0) << file_dump_->stderr_text;
  }

  static std::string WriteConfig() {
    std::string path = scratch_ + "/node.toml";
    std::ostringstream out;
    out << "[node]\nrole = \"primary\"\nstate_dir = \"" << scratch_ << "/state\"\n"
        << "[mysql]\nhost = \"" << server_->host() << "\"\nport = " << server_->port()
        << "\nuser = \"" << server_->user() << "\"\npassword = \"" << server_->password()
        << "\"\nreplica_server_id = 7001\n";
    EXPECT_TRUE(testing::WriteConfigFile(path, out.str()));
    return path;
  }

  static MariadbServer* server_;
  static Output* file_dump_;
  static std::string scratch_;
};

MariadbServer* BinlogDumpLiveTest::server_ = nullptr;
Output* BinlogDumpLiveTest::file_dump_ = nullptr;
std::string BinlogDumpLiveTest::scratch_;

// Replays the JSON row changes of every table and checks each line's shape as it goes.
struct Replay {
  std::map<std::string, std::multiset<Row>> rows;  // by table
  std::map<std::string, int> changes;              // row changes seen, by table
  std::vector<std::string> ddl;                    // DDL statements seen
  bool alt_altered = false;
};

void ReplayLines(const std::vector<std::string>& lines, Replay* replay) {
  std::map<std::string, Table> tables;
  for (const auto& t : Tables()) tables[t.name] = t;
  std::string last_pos;
  for (size_t i = 0; i < lines.size(); ++i) {
    SCOPED_TRACE(fmt::format("line {}: {}", i + 1, lines[i].substr(0, 300)));
    rapidjson::Document doc;
    doc.Parse<rapidjson::kParseFullPrecisionFlag>(lines[i].c_str(), lines[i].size());
    ASSERT_FALSE(doc.HasParseError());
    ASSERT_TRUE(doc.IsObject());
    ASSERT_TRUE(doc.HasMember("pos") && doc["pos"].IsString());
    ASSERT_TRUE(doc.HasMember("gtid") && doc["gtid"].IsString());  // MariaDB always has GTIDs
    ASSERT_TRUE(doc.HasMember("ts") && doc["ts"].IsInt64());
    ASSERT_TRUE(doc.HasMember("type") && doc["type"].IsString());
    std::string type = doc["type"].GetString();
    if (type == "ddl") {
      ASSERT_TRUE(doc.HasMember("sql") && doc["sql"].IsString());
      std::string sql = doc["sql"].GetString();
      replay->ddl.push_back(sql);
      if (sql.find("ALTER TABLE alt") != std::string::npos) replay->alt_altered = true;
      continue;
    }
    ASSERT_TRUE(type == "insert" || type == "update" || type == "delete") << type;
    ASSERT_TRUE(doc.HasMember("db") && doc["db"].IsString());
    ASSERT_TRUE(doc.HasMember("table") && doc["table"].IsString());
    if (std::string(doc["db"].GetString()) != kDb) continue;
    std::string name = doc["table"].GetString();
    ASSERT_TRUE(tables.count(name)) << name;
    const Table& table = tables[name];
    ++replay->changes[name];

    // A row image in canonical form; every column present, in column order.
    auto image = [&](const rapidjson::Value& obj, Row* row) {
      ASSERT_TRUE(obj.IsObject());
      std::vector<std::string> keys;
      for (auto it = obj.MemberBegin(); it != obj.MemberEnd(); ++it) {
        keys.emplace_back(it->name.GetString(), it->name.GetStringLength());
      }
      std::vector<std::string> expected;
      for (const auto& c : table.columns) {
        if (name == "alt" && c.name == "extra" && !replay->alt_altered) continue;
        expected.push_back(c.name);
      }
      ASSERT_EQ(keys, expected);
      row->clear();
      for (const auto& c : table.columns) {
        if (!obj.HasMember(c.name.c_str())) {
          row->push_back(kNull);  // `alt` rows from before the ALTER: the column is NULL now
          continue;
        }
        std::string error;
        std::string v = CanonicalFromJson(c, obj[c.name.c_str()], &error);
        ASSERT_TRUE(error.empty()) << error;
        row->push_back(v);
      }
    };
    auto& set = replay->rows[name];
    ASSERT_TRUE(doc.HasMember("before") && doc.HasMember("after"));
    Row before, after;
    if (type != "insert") {
      image(doc["before"], &before);
      if (::testing::Test::HasFatalFailure()) return;
      auto it = set.find(before);
      ASSERT_NE(it, set.end()) << "before image matches no row";
      set.erase(it);
    } else {
      ASSERT_TRUE(doc["before"].IsNull());
    }
    if (type != "delete") {
      image(doc["after"], &after);
      if (::testing::Test::HasFatalFailure()) return;
      set.insert(after);
    } else {
      ASSERT_TRUE(doc["after"].IsNull());
    }
  }
}

// The server's rows of `table`, canonical.
std::multiset<Row> ServerRows(MariadbServer& server, const Table& table) {
  std::string exprs;
  for (const auto& c : table.columns) exprs += (exprs.empty() ? "" : ", ") + SqlExpression(c);
  auto rows = server.Query(fmt::format("SELECT {} FROM {}.{}", exprs, kDb, table.name));
  EXPECT_TRUE(rows.ok()) << rows.status().ToString();
  std::multiset<Row> out;
  if (!rows.ok()) return out;
  for (const auto& r : *rows) {
    Row row;
    for (size_t i = 0; i < table.columns.size(); ++i) {
      row.push_back(CanonicalFromServer(table.columns[i], r[i]));
    }
    out.insert(row);
  }
  return out;
}

std::string Describe(const std::multiset<Row>& rows, size_t limit = 20) {
  std::string out;
  size_t n = 0;
  for (const auto& r : rows) {
    if (n++ == limit) {
      out += "...\n";
      break;
    }
    std::string line;
    for (const auto& v : r) line += (line.empty() ? "" : " | ") + v.substr(0, 80);
    out += line + "\n";
  }
  return out;
}

void ExpectTableMatches(MariadbServer& server, const Replay& replay, const std::string& name) {
  SCOPED_TRACE("table " + name);
  for (const auto& t : Tables()) {
    if (t.name != name) continue;
    std::multiset<Row> expected = ServerRows(server, t);
    auto it = replay.rows.find(name);
    std::multiset<Row> got = it == replay.rows.end() ? std::multiset<Row>() : it->second;
    if (got == expected) return;
    // Show the rows that differ.
    std::multiset<Row> only_server, only_dump;
    std::set_difference(expected.begin(), expected.end(), got.begin(), got.end(),
                        std::inserter(only_server, only_server.end()));
    std::set_difference(got.begin(), got.end(), expected.begin(), expected.end(),
                        std::inserter(only_dump, only_dump.end()));
    std::string columns;
    for (const auto& c : t.columns) columns += (columns.empty() ? "" : " | ") + c.name;
    ADD_FAILURE() << "rows differ (" << columns << ")\nonly on the server:\n"
                  << Describe(only_server) << "only in the dump:\n"
                  << Describe(only_dump);
    return;
  }
  ADD_FAILURE() << "no table " << name;
}

TEST_F(BinlogDumpLiveTest, FileDumpReplaysToTheServersRowsForEveryColumnType) {
  Replay replay;
  ReplayLines(file_dump_->lines, &replay);
  ASSERT_FALSE(HasFatalFailure());
  for (const auto& t : Tables()) ExpectTableMatches(*server_, replay, t.name);
  // Every table had its row changes printed (the big one: all 50 000 inserts, 50 updates, 10
  // deletes).
  EXPECT_EQ(replay.changes["big"], kBigRows + kBigRows / 1000 + kBigRows / 5000);
  EXPECT_EQ(replay.changes["ints"], 5 + 1);
  EXPECT_EQ(replay.changes["nopk"], 4 + 1 + 1);
  // DDL: CREATE DATABASE, one CREATE TABLE per table, the ALTER.
  EXPECT_EQ(replay.ddl.size(), 1 + Tables().size() + 1);
  EXPECT_TRUE(replay.alt_altered);
}

TEST_F(BinlogDumpLiveTest, ValueFormsAreTheDocumentedOnes) {
  // Spot checks of exact JSON text (the replay compares values; this pins their written form).
  std::string all;
  for (const auto& l : file_dump_->lines) all += l + "\n";
  auto expect = [&](const std::string& fragment) {
    EXPECT_NE(all.find(fragment), std::string::npos) << "missing " << fragment;
  };
  expect("\"bu\":18446744073709551615");
  expect("\"b\":-9223372036854775808");
  expect("\"d65\":\"-12345678901234567890123456789012345.123456789012345678901234567890\"");
  expect("\"d52\":\"-999.99\"");
  expect("\"d10\":\"9999999999\"");
  expect("\"t6\":\"-838:59:58.999999\"");
  expect("\"t0\":\"838:59:59\"");
  expect("\"dt6\":\"2024-02-29 12:34:56.123400\"");
  expect("\"dt0\":\"0000-00-00 00:00:00\"");
  expect("\"d\":\"0000-00-00\"");
  expect("\"ts3\":\"2023-12-31 18:30:00.123\"");  // written at +05:30, printed in UTC
  expect("\"ts0\":\"2038-01-19 03:14:07\"");
  expect("\"y\":2024");
  expect("\"b64\":18446744073709551615");
  expect("\"e\":\"medium\"");
  expect("\"s\":[\"a\",\"c\"]");
  expect("\"s\":[]");
  expect("\"c\":\"😀\"");
  expect("\"l1\":\"café\"");
  expect("\"vb\":{\"base64\":\"AA==\"}");
  expect("\"g\":{\"base64\":\"AAAAAAEBAAAAAAAAAAAA8D8AAAAAAAAAQA==\"}");  // POINT(1 2)
  expect("\"v\":\"tab\\tnl\\ncr\\r\"");
  expect("\"c\":null");
}

TEST_F(BinlogDumpLiveTest, LiveDumpPrintsWhatTheFileDumpPrints) {
  std::string config = WriteConfig();
  Output live =
      RunReplsync("binlog dump --json --config " + config + " --from binlog.000001:4", scratch_);
  ASSERT_EQ(live.exit_code, 0) << live.stderr_text;
  ASSERT_EQ(live.lines.size(), file_dump_->lines.size());
  for (size_t i = 0; i < live.lines.size(); ++i) {
    ASSERT_EQ(live.lines[i], file_dump_->lines[i]) << "line " << i + 1;
  }
}

TEST_F(BinlogDumpLiveTest, LiveDumpFromAGtidStartsAtTheNextTransaction) {
  // The transaction after the ALTER: its first line is the first with that GTID.
  std::string gtid_after_alter;
  size_t first_line = 0;
  for (size_t i = 0; i < file_dump_->lines.size(); ++i) {
    const std::string& l = file_dump_->lines[i];
    if (l.find("\"sql\":\"ALTER TABLE alt") != std::string::npos) {
      rapidjson::Document doc;
      doc.Parse(l.c_str());
      ASSERT_TRUE(doc.IsObject());
      gtid_after_alter = doc["gtid"].GetString();
      first_line = i + 1;
      break;
    }
  }
  ASSERT_FALSE(gtid_after_alter.empty());
  std::string config = WriteConfig();
  Output live = RunReplsync("binlog dump --json --config " + config + " --gtid " + gtid_after_alter,
                            scratch_);
  ASSERT_EQ(live.exit_code, 0) << live.stderr_text;
  std::vector<std::string> expected(file_dump_->lines.begin() + first_line,
                                    file_dump_->lines.end());
  ASSERT_EQ(live.lines.size(), expected.size());
  for (size_t i = 0; i < live.lines.size(); ++i) {
    ASSERT_EQ(live.lines[i], expected[i]) << "line " << i + 1;
  }
}

TEST_F(BinlogDumpLiveTest, UnreachableServerFailsWithAMessage) {
  auto port = testing::FreeLoopbackPort();
  ASSERT_TRUE(port.ok());
  std::string path = scratch_ + "/down.toml";
  {
    std::ostringstream out;
    out << "[node]\nrole = \"primary\"\n[mysql]\nhost = \"127.0.0.1\"\nport = " << *port
        << "\nuser = \"root\"\nconnect_timeout_s = 2\n";
    ASSERT_TRUE(testing::WriteConfigFile(path, out.str()));
  }
  Output out = RunReplsync("binlog dump --json --config " + path, scratch_);
  EXPECT_EQ(out.exit_code, 1) << out.stderr_text;
  EXPECT_TRUE(out.lines.empty());
  EXPECT_NE(out.stderr_text.find(std::to_string(*port)), std::string::npos) << out.stderr_text;
}

}  // namespace
}  // namespace replsync

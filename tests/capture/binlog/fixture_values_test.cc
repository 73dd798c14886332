// Row values of the recorded binlogs (REPLSYNC_FIXTURES_DIR/binlog, see SOURCES.md there),
// decoded with BinlogReader + RowDecoder and compared with what the servers stored.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "capture/binlog/binlog_decoder.h"
#include "capture/binlog/charset.h"
#include "capture/binlog/file_binlog_source.h"
#include "capture/binlog/json_binary.h"
#include "capture/binlog/row_decoder.h"

namespace replsync::capture {
namespace {

const std::string kFixtures = REPLSYNC_FIXTURES_DIR "/binlog/";

// One value as text: integers in decimal, DECIMAL as its digits, temporal values in SQL form
// with their fraction digits, JSON as MySQL prints it, strings and bytes as they are,
// "-" for a column missing from the image.
std::string Show(const Value& v) {
  char buf[64];
  switch (v.kind) {
    case ValueKind::kNull:
      return "NULL";
    case ValueKind::kInt:
    case ValueKind::kYear:
      return std::to_string(v.i);
    case ValueKind::kUInt:
    case ValueKind::kBit:
    case ValueKind::kEnum:
    case ValueKind::kSet:
      return std::to_string(v.u);
    case ValueKind::kFloat:
      std::snprintf(buf, sizeof(buf), "%.9g", v.f);
      return buf;
    case ValueKind::kDouble:
      std::snprintf(buf, sizeof(buf), "%.17g", v.d);
      return buf;
    case ValueKind::kDate:
      std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d", v.dt.year, v.dt.month, v.dt.day);
      return buf;
    case ValueKind::kDateTime:
      std::snprintf(buf, sizeof(buf), "%04d-%02d-%02d %02d:%02d:%02d.%06u", v.dt.year, v.dt.month,
                    v.dt.day, v.dt.hour, v.dt.minute, v.dt.second, v.dt.micro);
      return std::string(buf, 20 + v.decimals - (v.decimals == 0 ? 1 : 0));
    case ValueKind::kTime:
      std::snprintf(buf, sizeof(buf), "%s%02u:%02d:%02d.%06u", v.tm.negative ? "-" : "", v.tm.hours,
                    v.tm.minute, v.tm.second, v.tm.micro);
      return std::string(buf, std::strlen(buf) - 6 - (v.decimals == 0 ? 1 : 0) + v.decimals);
    case ValueKind::kTimestamp:
      return std::to_string(v.ts.seconds) + "." + std::to_string(v.ts.micro);
    case ValueKind::kJson: {
      std::string text;
      Status s = JsonBinaryToText(v.bytes, &text);
      return s.ok() ? text : s.ToString();
    }
    default:
      return std::string(v.bytes);
  }
}

struct Row {
  std::string table;  // db.table
  RowsKind kind;
  std::vector<std::string> before, after;  // Show() of each column; "-" when not in the image
};

std::vector<std::string> ShowImage(const RowImage& image) {
  std::vector<std::string> out;
  for (size_t i = 0; i < image.values.size(); ++i) {
    out.push_back(image.present[i] ? Show(image.values[i]) : "-");
  }
  return out;
}

// Decodes every row of `file`; `visit` (optional) sees each row while its views are valid.
std::vector<Row> ReadRows(
    const std::string& file,
    const std::function<void(const RowsEvent&, const RowImage&, const RowImage&)>& visit = {}) {
  std::vector<Row> rows;
  auto source = FileBinlogSource::Open({kFixtures + file});
  EXPECT_TRUE(source.ok()) << source.status().ToString();
  if (!source.ok()) return rows;
  BinlogReader reader(std::move(source).value());
  RowDecoder decoder;
  RowImage before, after;
  while (true) {
    auto event = reader.Next();
    EXPECT_TRUE(event.ok()) << event.status().ToString();
    if (!event.ok() || *event == nullptr) break;
    const auto* rows_event = std::get_if<RowsEvent>(&(*event)->body);
    if (rows_event == nullptr) continue;
    decoder.Reset(*rows_event);
    while (true) {
      before.values.clear();
      before.present.clear();
      after.values.clear();
      after.present.clear();
      auto more = decoder.Next(&before, &after);
      EXPECT_TRUE(more.ok()) << file << ": " << more.status().ToString();
      if (!more.ok() || !*more) break;
      if (visit) visit(*rows_event, before, after);
      rows.push_back({rows_event->table->db + "." + rows_event->table->table, rows_event->kind,
                      ShowImage(before), ShowImage(after)});
    }
  }
  return rows;
}

using Cols = std::vector<std::string>;

// MySQL prints JSON with ", " and ": "; SOURCES.md lists the compact form. Removes the blanks
// that follow ',' and ':' outside strings.
std::string Compact(const std::string& json) {
  std::string out;
  bool in_string = false;
  for (size_t i = 0; i < json.size(); ++i) {
    const char c = json[i];
    if (in_string) {
      out.push_back(c);
      if (c == '\\' && i + 1 < json.size()) out.push_back(json[++i]);
      if (c == '"') in_string = false;
      continue;
    }
    if (c == ' ' && !out.empty() && (out.back() == ',' || out.back() == ':')) continue;
    if (c == '"') in_string = true;
    out.push_back(c);
  }
  return out;
}

TEST(FixtureValuesTest, JsonOpaqueValuesPrintAsMysqlPrintsThem) {
  const std::vector<Row> rows = ReadRows("rust_mysql_common/json-opaque.binlog");
  ASSERT_EQ(rows.size(), 8u);
  // Exactly MySQL's text form (Json_wrapper::to_string).
  const char* const mysql[] = {R"({"a": "base64:type15:VQ=="})",
                               R"({"b": "2012-03-18"})",
                               R"({"c": "2012-03-18 11:30:45.000000"})",
                               R"({"c": "87:31:46.654321"})",
                               R"({"d": 123.456})",
                               R"({"e": 9.00})",
                               R"({"e": [0, 1, true, false]})",
                               R"({"e": null})"};
  // SOURCES.md's compact forms; it quotes the two decimals because the source project renders
  // opaque DECIMALs as strings, whereas MySQL prints them as numbers (first list).
  const char* const listed[] = {R"({"a":"base64:type15:VQ=="})",
                                R"({"b":"2012-03-18"})",
                                R"({"c":"2012-03-18 11:30:45.000000"})",
                                R"({"c":"87:31:46.654321"})",
                                R"({"d":"123.456"})",
                                R"({"e":"9.00"})",
                                R"({"e":[0,1,true,false]})",
                                R"({"e":null})"};
  for (size_t i = 0; i < rows.size(); ++i) {
    ASSERT_EQ(rows[i].after.size(), 1u);
    EXPECT_EQ(rows[i].after[0], mysql[i]) << i;
    if (i != 4 && i != 5) {
      EXPECT_EQ(Compact(rows[i].after[0]), listed[i]) << i;
    }
  }
}

TEST(FixtureValuesTest, NegativeTimeWithMoreThan255Hours) {
  const std::vector<Row> rows = ReadRows("rust_mysql_common/time_issue.000001");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].after, Cols{"-507:48:27"});
}

TEST(FixtureValuesTest, MinimalRowImageIndexesMetadataByTableColumn) {
  std::string charset;
  const std::vector<Row> rows =
      ReadRows("rust_mysql_common/minimal_row_metadata.000001",
               [&](const RowsEvent& event, const RowImage&, const RowImage&) {
                 const char* cs = CharsetOfCollation(event.table->columns[2].collation);
                 charset = cs != nullptr ? cs : "?";
                 EXPECT_EQ(event.table->columns[2].collation, 255u);  // utf8mb4_0900_ai_ci
               });
  ASSERT_EQ(rows.size(), 1u);
  // t1(col_1 int PK, col_2 blob, col_3 char(2), col_4 int, col_5 int unsigned): only col_1,
  // col_3 and col_5 were inserted.
  EXPECT_EQ(rows[0].after, (Cols{"1", "-", "a", "-", "3230202323"}));
  EXPECT_EQ(charset, "utf8mb4");
}

TEST(FixtureValuesTest, EnumSetCharAndVarcharOfMysql8) {
  const std::string f1 = [] {
    std::string s;
    for (int i = 0; i < 10; ++i) s += "0123456789";
    return s;
  }();
  // The f2/f5 value the test data was written with (298 characters; two groups end in "78").
  const std::string f2 =
      "0123456789012345678901234567890123456789012345678901234567890123456789012345678901234567"
      "8901234567890123456789012345678901234567801234567890123456789012345678901234567890123456"
      "7890123456789012345678901234567890123456789012345678901234567890123456789012345678012345"
      "6789012345678901234567890123456789";
  const std::vector<Row> rows = ReadRows("rust_mysql_common/mysql-enum-string-set.000001");
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[0].kind, RowsKind::kWrite);
  EXPECT_EQ(rows[0].after, (Cols{f1, f2, "1", "5", "0123456789"}));
  EXPECT_EQ(rows[1].kind, RowsKind::kUpdate);
  EXPECT_EQ(rows[1].before, rows[0].after);
  EXPECT_EQ(rows[1].after, (Cols{"field1", "field_2", "2", "10", f2}));
  EXPECT_EQ(rows[2].kind, RowsKind::kDelete);
  EXPECT_EQ(rows[2].before, rows[1].after);
}

TEST(FixtureValuesTest, BitColumns) {
  const std::vector<Row> rows = ReadRows("rust_mysql_common/mysql_type_bit.000001");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0].after, (Cols{"4", "foo", "32"}));  // b'100', 'foo', b'100000'
}

std::vector<float> Floats(const std::string& bytes) {
  std::vector<float> out(bytes.size() / 4);
  std::memcpy(out.data(), bytes.data(), out.size() * 4);
  return out;
}

TEST(FixtureValuesTest, VectorColumns) {
  std::vector<std::vector<std::vector<float>>> vectors;  // per row, per VECTOR column
  const std::vector<Row> rows =
      ReadRows("rust_mysql_common/vector.binlog",
               [&](const RowsEvent& event, const RowImage& b, const RowImage& a) {
                 const RowImage& image = event.kind == RowsKind::kDelete ? b : a;
                 std::vector<std::vector<float>> row;
                 for (size_t i = 0; i < image.values.size(); ++i) {
                   if (event.table->columns[i].type != ColumnType::kVector) continue;
                   EXPECT_EQ(image.values[i].kind, ValueKind::kVector);
                   row.push_back(Floats(std::string(image.values[i].bytes)));
                 }
                 vectors.push_back(row);
               });
  ASSERT_EQ(rows.size(), 10u);
  EXPECT_EQ(rows[0].table, "dtb.foo");
  EXPECT_EQ(rows[0].after[0], "1");
  EXPECT_EQ(vectors[0], (std::vector<std::vector<float>>{{1.1f, 2.2f, 3.3f}}));
  EXPECT_EQ(vectors[1], (std::vector<std::vector<float>>{{1.0f, -1.0f, 0.0f}}));
  EXPECT_EQ(rows[2].table, "dtb.bar");
  EXPECT_EQ(rows[2].after[2], "NULL");
  EXPECT_EQ(vectors[2], (std::vector<std::vector<float>>{{1.1f, 2.2f}, {1.1f, 2.2f, 3.3f, 4.4f}}));
  EXPECT_EQ(rows[3].after[2], "bar");
  EXPECT_EQ(vectors[3],
            (std::vector<std::vector<float>>{{1.01f, -1.01f}, {42.0f, 43.0f, 44.0f, 45.0f}}));
  EXPECT_EQ(rows[8].kind, RowsKind::kDelete);
  EXPECT_EQ(rows[8].before[0], "2");
  EXPECT_EQ(rows[9].after[0], "3");
  EXPECT_EQ(vectors[9],
            (std::vector<std::vector<float>>{{2.01f, -2.01f}, {42.1f, 43.2f, 44.3f, 45.4f}}));
}

TEST(FixtureValuesTest, PartialJsonUpdateAppliesToThePreviousDocument) {
  // mysql.t(id INT, doc JSON, name VARCHAR, age INT): inserts, a full UPDATE (age + 1), then a
  // PARTIAL_UPDATE_ROWS (JSON_SET age + 1) whose before images hold the key only.
  std::map<std::string, std::string> doc_by_id;  // the latest binary JSON of each row
  std::vector<std::string> applied;
  std::vector<std::string> age_column;
  ReadRows("rust_mysql_common/json.binlog.000001",
           [&](const RowsEvent& event, const RowImage& before, const RowImage& after) {
             if (event.kind == RowsKind::kWrite) {
               doc_by_id[Show(after.values[0])] = std::string(after.values[1].bytes);
               return;
             }
             const std::string id = Show(before.values[0]);
             if (!event.partial_json) {
               doc_by_id[id] = std::string(after.values[1].bytes);
               return;
             }
             ASSERT_FALSE(before.present[1]);
             ASSERT_EQ(after.values[1].kind, ValueKind::kJsonDiff);
             std::string text;
             Status s = ApplyJsonDiff(doc_by_id[id], after.values[1].bytes, &text);
             ASSERT_TRUE(s.ok()) << s.ToString();
             applied.push_back(text);
             age_column.push_back(Show(after.values[3]));
           });
  EXPECT_EQ(applied,
            (std::vector<std::string>{R"({"age": 26, "data": "xxxxxxxxxx", "name": "Joe"})",
                                      R"({"age": 34, "data": "yyyyyyyyyy", "name": "Sue"})",
                                      R"({"age": 42, "data": "zzzzzzzzzz", "name": "Pete"})",
                                      R"({"age": 26, "data": "xxxxxxxxxx", "name": "Joe"})",
                                      R"({"age": 34, "data": "yyyyyyyyyy", "name": "Sue"})",
                                      R"({"age": 42, "data": "zzzzzzzzzz", "name": "Pete"})"}));
  EXPECT_EQ(age_column, (std::vector<std::string>{"26", "34", "42", "26", "34", "42"}));
}

TEST(FixtureValuesTest, DecimalOfPerconaServer57) {
  const std::vector<Row> rows = ReadRows("rust-mysql-binlog/test_data/bin-log.000001");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].after, (Cols{"1", "0.10000", "zero point one"}));
  EXPECT_EQ(rows[1].after, (Cols{"2", "1.00000", "one point zero"}));
}

TEST(FixtureValuesTest, LineitemDecimalsAndDates) {
  const std::vector<Row> rows = ReadRows("mysql-cdc-rs/events/8.0/02_query_bigger/binlog.000733");
  ASSERT_EQ(rows.size(), 14u);  // 6 inserts, 1 update, 2 deletes, then 5 inserts into Demo
  EXPECT_EQ(rows[0].table, "test.LINEITEM");
  EXPECT_EQ(rows[9].table, "test.Demo");
  // DECIMAL(12,3), (13,2), (10,1), (12,1) keep exactly their scale; DATE columns.
  EXPECT_EQ(rows[0].after, (Cols{"1234567890111", "1235111", "13711", "888878711", "99.911",
                                 "76.11", "888.1", "109.1", "code", "Y", "1990-08-01", "1990-06-01",
                                 "1990-01-01", "test@test.com", "test", "com"}));
  // utf8mb3 text: "使用箭头标记 -> 不是 SQL 语句的一部分，..." (229 bytes).
  const std::string comment = rows[3].after[15];
  EXPECT_EQ(comment.size(), 229u);
  EXPECT_EQ(comment.substr(0, 42),
            "\xe4\xbd\xbf\xe7\x94\xa8\xe7\xae\xad\xe5\xa4\xb4\xe6\xa0\x87\xe8\xae\xb0 -> "
            "\xe4\xb8\x8d\xe6\x98\xaf SQL \xe8\xaf\xad\xe5\x8f\xa5\xe7\x9a\x84");
  std::string converted;
  AppendAsUtf8(33, comment, &converted);
  EXPECT_EQ(converted, comment);  // valid UTF-8 as stored
  int updates = 0, deletes = 0;
  for (const Row& r : rows) {
    if (r.kind == RowsKind::kUpdate) {
      ++updates;
      EXPECT_EQ(r.before.size(), 16u);
      EXPECT_EQ(r.after.size(), 16u);
    }
    if (r.kind == RowsKind::kDelete) ++deletes;
  }
  EXPECT_EQ(updates, 1);
  EXPECT_EQ(deletes, 2);
  EXPECT_EQ(rows[6].before[4], "99.997");  // the updated row's L_QUANTITY before the update
}

TEST(FixtureValuesTest, MariadbRowsV1WithFullMetadata) {
  const std::vector<Row> rows = ReadRows("rust_mysql_common/mariadb-bin.000001");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].table, "toddy_test.outbox");
  EXPECT_EQ(rows[0].after, (Cols{"62", "foo", "2", R"({"foo":1})", "1650493084.0"}));
  EXPECT_EQ(rows[1].after, (Cols{"63", "foo", "2", R"({"foo":1})", "1650493195.0"}));
}

TEST(FixtureValuesTest, SakilaSampleDataDecodesCompletely) {
  std::map<std::string, int> per_table;
  std::vector<Row> films;
  const std::vector<Row> rows = ReadRows("mysql-binlog-connector-java/mysql-bin.sakila.gz");
  for (const Row& r : rows) {
    ++per_table[r.table];
    if (r.table == "sakila.film" && films.size() < 2) films.push_back(r);
  }
  // The row counts of the Sakila sample database.
  EXPECT_EQ(per_table, (std::map<std::string, int>{{"sakila.actor", 200},
                                                   {"sakila.address", 603},
                                                   {"sakila.category", 16},
                                                   {"sakila.city", 600},
                                                   {"sakila.country", 109},
                                                   {"sakila.customer", 599},
                                                   {"sakila.film", 1000},
                                                   {"sakila.film_actor", 5462},
                                                   {"sakila.film_category", 1000},
                                                   {"sakila.film_text", 1000},
                                                   {"sakila.inventory", 4581},
                                                   {"sakila.language", 6},
                                                   {"sakila.payment", 16049},
                                                   {"sakila.rental", 16044},
                                                   {"sakila.staff", 2},
                                                   {"sakila.store", 2}}));
  EXPECT_EQ(rows[0].after, (Cols{"1", "PENELOPE", "GUINESS", "1139974473.0"}));
  // film 1: ACADEMY DINOSAUR, 2006, rental_rate 0.99, length 86, replacement_cost 20.99,
  // rating 'PG' (ENUM index 2), special_features 'Deleted Scenes,Behind the Scenes' (SET 4|8).
  ASSERT_EQ(films.size(), 2u);
  const Cols& f = films[0].after;
  ASSERT_EQ(f.size(), 13u);
  EXPECT_EQ(f[0], "1");
  EXPECT_EQ(f[1], "ACADEMY DINOSAUR");
  EXPECT_EQ(f[3], "2006");
  EXPECT_EQ(f[5], "NULL");
  EXPECT_EQ(f[7], "0.99");
  EXPECT_EQ(f[8], "86");
  EXPECT_EQ(f[9], "20.99");
  EXPECT_EQ(f[10], "2");
  EXPECT_EQ(f[11], "12");
  EXPECT_EQ(films[1].after[1], "ACE GOLDFINGER");
}

TEST(FixtureValuesTest, PreGaRowsEventsOfMysql51Alpha) {
  // 5.2.2-a_drop6p13 (a WL#2325 tree): rows events 20-22 carry the record's NULL bytes (with
  // the reserved bit 0) and every column, NULL or not.
  const std::vector<Row> rows = ReadRows("rust_mysql_common/ver_5_1-wl2325_r.001");
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(rows[0].after, (Cols{"0", "one"}));
  EXPECT_EQ(rows[1].after, (Cols{"1", "two"}));
  EXPECT_EQ(rows[2].kind, RowsKind::kUpdate);
  EXPECT_EQ(rows[2].before, (Cols{"0", "one"}));
  EXPECT_EQ(rows[2].after, (Cols{"1", "one"}));
  EXPECT_EQ(rows[3].before, (Cols{"1", "two"}));
  EXPECT_EQ(rows[3].after, (Cols{"2", "two"}));
  EXPECT_EQ(rows[4].kind, RowsKind::kDelete);
  EXPECT_EQ(rows[4].before, (Cols{"2", "two"}));
}

}  // namespace
}  // namespace replsync::capture

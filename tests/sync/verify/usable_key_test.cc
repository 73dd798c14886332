#include "sync/verify/usable_key.h"

#include <gtest/gtest.h>

#include <map>

namespace replsync::verify {
namespace {

SqlSession::Row Stat(const std::string& index, bool unique, const std::string& column) {
  return {index, std::string(unique ? "0" : "1"), column};
}

std::function<std::optional<bool>(const std::string&)> Nullable(
    std::map<std::string, bool> columns) {
  return [columns](const std::string& name) -> std::optional<bool> {
    auto it = columns.find(name);
    if (it == columns.end()) return std::nullopt;
    return it->second;
  };
}

TEST(UsableKeyTest, PrimaryKeyComesFirst) {
  UsableKey key = ChooseUsableKey(
      {Stat("PRIMARY", true, "a"), Stat("PRIMARY", true, "b"), Stat("u", true, "c")},
      Nullable({{"a", false}, {"b", false}, {"c", false}}));
  EXPECT_EQ(key, (UsableKey{"PRIMARY", {"a", "b"}}));
}

TEST(UsableKeyTest, AUniqueIndexWithANullableColumnIsSkipped) {
  UsableKey key = ChooseUsableKey({Stat("a_idx", true, "x"), Stat("a_idx", true, "y"),
                                   Stat("b_idx", false, "z"), Stat("c_idx", true, "z")},
                                  Nullable({{"x", false}, {"y", true}, {"z", false}}));
  EXPECT_EQ(key, (UsableKey{"c_idx", {"z"}}));
}

TEST(UsableKeyTest, NoUsableKeyIsEmpty) {
  EXPECT_EQ(
      ChooseUsableKey({Stat("i", false, "x"), Stat("u", true, "gone")}, Nullable({{"x", false}})),
      UsableKey{});
}

}  // namespace
}  // namespace replsync::verify

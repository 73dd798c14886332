// MarkConflicts: which of an old primary's tail paths the promoted node also changed after the
// fork — the same path, a folder above it, or a path below it (a rename's source counts too).
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tools/cli/rejoin_command.h"

namespace replsync::cli {
namespace {

std::vector<TailFileChange> Tail() {
  return {{.seq = 1, .change = "file", .path = "a/b.txt", .from_path = "", .conflict = false},
          {.seq = 2, .change = "file", .path = "a/bc.txt", .from_path = "", .conflict = false},
          {.seq = 3, .change = "directory", .path = "d", .from_path = "", .conflict = false},
          {.seq = 4, .change = "rename", .path = "new", .from_path = "x/old", .conflict = false},
          {.seq = 5, .change = "file", .path = "quiet.txt", .from_path = "", .conflict = false}};
}

std::vector<bool> Marks(const std::vector<std::string>& changed) {
  std::vector<TailFileChange> files = Tail();
  MarkConflicts(changed, &files);
  std::vector<bool> marks;
  for (const TailFileChange& f : files) marks.push_back(f.conflict);
  return marks;
}

TEST(MarkConflictsTest, NothingChangedMeansNoConflict) {
  EXPECT_EQ(Marks({}), std::vector<bool>({false, false, false, false, false}));
}

TEST(MarkConflictsTest, TheSamePathConflicts) {
  EXPECT_EQ(Marks({"a/b.txt"}), std::vector<bool>({true, false, false, false, false}));
}

TEST(MarkConflictsTest, AFolderAboveConflictsButNotANamePrefix) {
  // "a" was replaced or deleted by the new primary: everything below it is touched.
  EXPECT_EQ(Marks({"a"}), std::vector<bool>({true, true, false, false, false}));
  // "a/b" is a sibling name of "a/b.txt", not a folder above it.
  EXPECT_EQ(Marks({"a/b"}), std::vector<bool>({false, false, false, false, false}));
}

TEST(MarkConflictsTest, APathBelowAFolderOfTheTailConflicts) {
  EXPECT_EQ(Marks({"d/inner/f"}), std::vector<bool>({false, false, true, false, false}));
  EXPECT_EQ(Marks({"dd"}), std::vector<bool>({false, false, false, false, false}));
}

TEST(MarkConflictsTest, ARenameConflictsThroughItsSourceToo) {
  EXPECT_EQ(Marks({"x/old"}), std::vector<bool>({false, false, false, true, false}));
  EXPECT_EQ(Marks({"x"}), std::vector<bool>({false, false, false, true, false}));
}

}  // namespace
}  // namespace replsync::cli

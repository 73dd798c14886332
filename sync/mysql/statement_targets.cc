#include "sync/mysql/statement_targets.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

namespace replsync {

namespace {

constexpr uint64_t kModeAnsiQuotes = 1ULL << 2;
constexpr uint64_t kModeNoBackslashEscapes = 1ULL << 21;

// ---- Lexer ----------------------------------------------------------------------------------

enum class TokenType : uint8_t {
  kWord,    // unquoted identifier, keyword or number
  kIdent,   // quoted identifier (backticks, or double quotes under ANSI_QUOTES); text unquoted
  kString,  // string literal (its text is not kept)
  kPunct,   // any other single character
};

struct Token {
  TokenType type;
  std::string text;  // kWord, kIdent
  char punct = 0;    // kPunct
  size_t begin = 0;  // where it stands in the statement's text: [begin, end)
  size_t end = 0;
};

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '$' || static_cast<unsigned char>(c) >= 0x80;
}

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// Splits `sql` into tokens. Comments are dropped; the text of executable comments (/*!NNNNN
// ... */, /*M!NNNNNN ... */) is read as part of the statement.
std::vector<Token> Lex(std::string_view sql, SqlSyntax syntax) {
  std::vector<Token> tokens;
  size_t i = 0;
  const size_t n = sql.size();
  int executable_depth = 0;
  while (i < n) {
    const char c = sql[i];
    const size_t start = i;
    if (IsSpace(c)) {
      ++i;
      continue;
    }
    if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      size_t body = i + 2;
      if (body < n && sql[body] == '!') {
        ++body;
      } else if (body + 1 < n && (sql[body] == 'M' || sql[body] == 'm') && sql[body + 1] == '!') {
        body += 2;
      } else {
        size_t end = sql.find("*/", body);
        i = end == std::string_view::npos ? n : end + 2;
        continue;
      }
      while (body < n && IsDigit(sql[body])) ++body;  // the version
      ++executable_depth;
      i = body;
      continue;
    }
    if (c == '*' && executable_depth > 0 && i + 1 < n && sql[i + 1] == '/') {
      --executable_depth;
      i += 2;
      continue;
    }
    if (c == '#' ||
        (c == '-' && i + 1 < n && sql[i + 1] == '-' &&
         (i + 2 == n || IsSpace(sql[i + 2]) || static_cast<unsigned char>(sql[i + 2]) < 0x20))) {
      size_t end = sql.find('\n', i);
      i = end == std::string_view::npos ? n : end + 1;
      continue;
    }
    if (c == '`' || (c == '"' && syntax.ansi_quotes)) {
      // Quoted identifier; the quote doubled stands for itself.
      Token token{TokenType::kIdent, {}, 0};
      size_t j = i + 1;
      while (j < n) {
        if (sql[j] == c) {
          if (j + 1 < n && sql[j + 1] == c) {
            token.text.push_back(c);
            j += 2;
            continue;
          }
          break;
        }
        token.text.push_back(sql[j]);
        ++j;
      }
      i = j < n ? j + 1 : n;
      token.end = i;
      token.begin = start;
      tokens.push_back(std::move(token));
      continue;
    }
    if (c == '\'' || c == '"') {
      size_t j = i + 1;
      while (j < n) {
        if (sql[j] == '\\' && !syntax.no_backslash_escapes) {
          j += 2;
          continue;
        }
        if (sql[j] == c) {
          if (j + 1 < n && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          break;
        }
        ++j;
      }
      i = j < n ? j + 1 : n;
      tokens.push_back(Token{TokenType::kString, {}, 0, start, i});
      continue;
    }
    if (IsWordChar(c)) {
      size_t j = i;
      while (j < n && IsWordChar(sql[j])) ++j;
      tokens.push_back(Token{TokenType::kWord, std::string(sql.substr(i, j - i)), 0, i, j});
      i = j;
      continue;
    }
    tokens.push_back(Token{TokenType::kPunct, {}, c, i, i + 1});
    ++i;
  }
  return tokens;
}

bool EqualsUpper(std::string_view word, std::string_view upper) {
  if (word.size() != upper.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    char c = word[i];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    if (c != upper[i]) return false;
  }
  return true;
}

// ---- Parser ---------------------------------------------------------------------------------

struct Name {
  std::string db;  // "" when unqualified
  std::string name;
};

class Parser {
 public:
  Parser(const std::vector<Token>& tokens, size_t start, std::string_view session_db)
      : tokens_(tokens), pos_(start), session_db_(session_db) {}

  StatementTargets Run() {
    Statement();
    std::sort(result_.databases.begin(), result_.databases.end());
    result_.databases.erase(std::unique(result_.databases.begin(), result_.databases.end()),
                            result_.databases.end());
    return std::move(result_);
  }

  // See AnalyzeTableMoves: the moves Run recorded, or {} when the statement moved nothing or was
  // not read completely.
  std::vector<TableMove> Moves() const {
    if (!result_.complete) return {};
    return moves_;
  }

  // See AnalyzeDdlObject.
  DdlObject Object() {
    DdlObject object;
    SkipSetStatement();
    if (Accept("CREATE")) {
      object.verb = DdlVerb::kCreate;
    } else if (Accept("ALTER")) {
      object.verb = DdlVerb::kAlter;
    } else if (Accept("DROP")) {
      object.verb = DdlVerb::kDrop;
    } else {
      return object;
    }
    SkipObjectModifiers();
    object.kind = ObjectKindWord();
    if (object.kind == ObjectKind::kNone) {
      object.verb = DdlVerb::kNone;
      return object;
    }
    SkipIfExists();
    Name name;
    if (object.kind == ObjectKind::kDatabase) {
      // ALTER DATABASE [name] options: the name is optional.
      if (IsNameToken() && !(At()->type == TokenType::kWord &&
                             IsAnyWord({"DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT",
                                        "READ", "ENCRYPTION", "UPGRADE"}))) {
        object.name = At()->text;
      }
      return object;
    }
    if (ParseName(&name)) {
      object.db = std::move(name.db);
      object.name = std::move(name.name);
    }
    if (IsPunct(',') && object.verb == DdlVerb::kDrop) {
      // DROP TABLE a, b: several objects.
      object.db.clear();
      object.name.clear();
      return object;
    }
    if (object.kind == ObjectKind::kFunction && object.verb == DdlVerb::kCreate &&
        object.db.empty() && Contains("SONAME")) {
      object.kind = ObjectKind::kLoadableFunction;
    }
    if (object.kind == ObjectKind::kEvent && object.verb == DdlVerb::kAlter && SeekWord("RENAME") &&
        Accept("TO") && ParseName(&name)) {
      object.new_db = std::move(name.db);
      object.new_name = std::move(name.name);
    }
    return object;
  }

  // Where the status clause of a CREATE / ALTER EVENT goes (see WithEventDisabledOnSlave):
  // {begin, end} of an ENABLE to replace, {begin, begin} of the DO to insert before; nullopt when
  // nothing is to change.
  std::optional<std::pair<size_t, size_t>> EventStatusEdit() {
    SkipSetStatement();
    bool create = false;
    if (Accept("CREATE")) {
      create = true;
    } else if (!Accept("ALTER")) {
      return std::nullopt;
    }
    SkipObjectModifiers();
    if (!Accept("EVENT")) return std::nullopt;
    SkipIfExists();
    Name name;
    if (!ParseName(&name)) return std::nullopt;
    int depth = 0;
    while (!AtEnd()) {
      if (IsPunct('(')) {
        ++depth;
      } else if (IsPunct(')')) {
        --depth;
      } else if (depth <= 0 && IsWord("ENABLE")) {
        return std::make_pair(At()->begin, At()->end);
      } else if (depth <= 0 && IsWord("DISABLE")) {
        return std::nullopt;  // DISABLE or DISABLE ON SLAVE: never runs here
      } else if (depth <= 0 && IsWord("DO")) {
        if (!create) return std::nullopt;  // ALTER without a status clause keeps the status
        return std::make_pair(At()->begin, At()->begin);
      }
      Advance();
    }
    return std::nullopt;
  }

 private:
  // SET STATEMENT var=value[, ...] FOR statement: moves to the statement.
  void SkipSetStatement() {
    if (IsWord("SET") && IsWord("STATEMENT", 1)) {
      Advance();
      SeekWord("FOR");
    }
  }
  // The object kind word(s) after CREATE / ALTER / DROP and their modifiers, consumed.
  ObjectKind ObjectKindWord() {
    struct KindWord {
      std::string_view word;
      ObjectKind kind;
    };
    static constexpr KindWord kWords[] = {
        {"DATABASE", ObjectKind::kDatabase}, {"SCHEMA", ObjectKind::kDatabase},
        {"TABLE", ObjectKind::kTable},       {"TABLES", ObjectKind::kTable},
        {"INDEX", ObjectKind::kIndex},       {"SEQUENCE", ObjectKind::kSequence},
        {"VIEW", ObjectKind::kView},         {"PROCEDURE", ObjectKind::kProcedure},
        {"FUNCTION", ObjectKind::kFunction}, {"TRIGGER", ObjectKind::kTrigger},
        {"EVENT", ObjectKind::kEvent},       {"USER", ObjectKind::kUser},
        {"ROLE", ObjectKind::kRole},         {"SERVER", ObjectKind::kServer},
    };
    if (Accept("PACKAGE")) return Accept("BODY") ? ObjectKind::kPackageBody : ObjectKind::kPackage;
    for (const KindWord& k : kWords) {
      if (Accept(k.word)) return k.kind;
    }
    return ObjectKind::kNone;
  }

  // -- token access
  const Token* At(size_t k = 0) const {
    return pos_ + k < tokens_.size() ? &tokens_[pos_ + k] : nullptr;
  }
  bool AtEnd() const {
    const Token* t = At();
    return t == nullptr || (t->type == TokenType::kPunct && t->punct == ';');
  }
  bool IsWord(std::string_view upper, size_t k = 0) const {
    const Token* t = At(k);
    return t != nullptr && t->type == TokenType::kWord && EqualsUpper(t->text, upper);
  }
  bool IsAnyWord(std::initializer_list<std::string_view> words, size_t k = 0) const {
    for (std::string_view w : words) {
      if (IsWord(w, k)) return true;
    }
    return false;
  }
  bool IsPunct(char c, size_t k = 0) const {
    const Token* t = At(k);
    return t != nullptr && t->type == TokenType::kPunct && t->punct == c;
  }
  bool IsNameToken(size_t k = 0) const {
    const Token* t = At(k);
    return t != nullptr && (t->type == TokenType::kWord || t->type == TokenType::kIdent);
  }
  void Advance(size_t k = 1) { pos_ = std::min(pos_ + k, tokens_.size()); }
  bool Accept(std::string_view upper) {
    if (!IsWord(upper)) return false;
    Advance();
    return true;
  }
  bool AcceptAny(std::initializer_list<std::string_view> words) {
    if (!IsAnyWord(words)) return false;
    Advance();
    return true;
  }
  bool AcceptPunct(char c) {
    if (!IsPunct(c)) return false;
    Advance();
    return true;
  }

  // -- results
  void AddDb(std::string db) { result_.databases.push_back(std::move(db)); }
  void AddSessionDb() {
    if (session_db_.empty()) {
      result_.complete = false;
    } else {
      AddDb(std::string(session_db_));
    }
  }
  void AddObject(const Name& name) {
    if (!name.db.empty()) {
      AddDb(name.db);
    } else {
      AddSessionDb();
    }
  }
  void Incomplete() { result_.complete = false; }
  // A table moved (or created like another): unqualified names are the default database's.
  void AddMove(const Name& from, const Name& to, bool like) {
    if (from.name.empty() || to.name.empty()) return Incomplete();
    TableMove move;
    move.from_db = from.db.empty() ? std::string(session_db_) : from.db;
    move.from_table = from.name;
    move.to_db = to.db.empty() ? std::string(session_db_) : to.db;
    move.to_table = to.name;
    move.like = like;
    if (move.from_db.empty() || move.to_db.empty()) return Incomplete();
    moves_.push_back(std::move(move));
  }

  // -- grammar pieces
  // ident [ '.' ident ]
  bool ParseName(Name* name) {
    if (!IsNameToken()) return false;
    std::string first = At()->text;
    Advance();
    if (IsPunct('.') && IsNameToken(1)) {
      name->db = std::move(first);
      name->name = At(1)->text;
      Advance(2);
    } else {
      name->db.clear();
      name->name = std::move(first);
    }
    return true;
  }
  // Parses a name and records the database it belongs to; incomplete when there is none.
  void ObjectName() {
    Name name;
    if (ParseName(&name)) {
      AddObject(name);
    } else {
      Incomplete();
    }
  }
  void ObjectNameList() {
    do {
      ObjectName();
    } while (AcceptPunct(','));
  }
  // IF EXISTS / IF NOT EXISTS
  void SkipIfExists() {
    if (!IsWord("IF")) return;
    if (IsWord("EXISTS", 1)) {
      Advance(2);
    } else if (IsWord("NOT", 1) && IsWord("EXISTS", 2)) {
      Advance(3);
    }
  }
  // MariaDB lock-wait clauses: WAIT n | NOWAIT
  void SkipWait() {
    if (Accept("WAIT")) {
      Advance();
    } else {
      Accept("NOWAIT");
    }
  }
  // A user: 'name'@'host', `name`@`host`, name@host, CURRENT_USER[()], or a role name.
  void SkipUser() {
    if (Accept("CURRENT_USER")) {
      if (IsPunct('(') && IsPunct(')', 1)) Advance(2);
      return;
    }
    Advance();
    if (!AcceptPunct('@')) return;
    Advance();
    // An unquoted host name or address: localhost, 127.0.0.1, db.example.com.
    while (IsPunct('.') && IsNameToken(1)) Advance(2);
  }
  // What may stand between CREATE/ALTER/DROP and the object kind.
  void SkipObjectModifiers() {
    while (!AtEnd()) {
      if (Accept("OR")) {
        Accept("REPLACE");
      } else if (AcceptAny({"TEMPORARY", "UNIQUE", "FULLTEXT", "SPATIAL", "ONLINE", "OFFLINE",
                            "AGGREGATE", "IGNORE", "NONBLOCKING"})) {
      } else if (Accept("ALGORITHM")) {
        AcceptPunct('=');
        Advance();
      } else if (Accept("DEFINER")) {
        AcceptPunct('=');
        SkipUser();
      } else if (Accept("SQL")) {
        Accept("SECURITY");
        Advance();
      } else {
        break;
      }
    }
  }
  // Moves to the next top-level (outside parentheses) occurrence of `upper`, just after it.
  // Returns false (at the end) when there is none.
  bool SeekWord(std::string_view upper) {
    int depth = 0;
    while (!AtEnd()) {
      if (IsPunct('(')) {
        ++depth;
      } else if (IsPunct(')')) {
        --depth;
      } else if (depth <= 0 && IsWord(upper)) {
        Advance();
        return true;
      }
      Advance();
    }
    return false;
  }
  // True when `upper` occurs as a word anywhere from the current position on.
  bool Contains(std::string_view upper) const {
    for (size_t i = pos_; i < tokens_.size(); ++i) {
      const Token& t = tokens_[i];
      if (t.type == TokenType::kWord && EqualsUpper(t.text, upper)) return true;
    }
    return false;
  }
  // Parses a name, as ObjectName does, and returns it ({} when there is none).
  Name TableName() {
    Name name;
    if (ParseName(&name)) {
      AddObject(name);
    } else {
      Incomplete();
    }
    return name;
  }
  // The parent table of a foreign key of `child`: unqualified, it is in the child table's
  // database, not the default one (MariaDB 10.11: `USE b; CREATE TABLE a.c (x INT, FOREIGN KEY
  // (x) REFERENCES p (id))` references a.p).
  void ReferencedTable(const Name& child) {
    Name parent;
    if (!ParseName(&parent)) return Incomplete();
    if (!parent.db.empty()) return AddDb(parent.db);
    if (!child.db.empty()) return AddDb(child.db);
    AddSessionDb();
  }
  // Records the tables named after REFERENCES (foreign keys of `child`) from the current
  // position on.
  void AddReferences(const Name& child) {
    while (!AtEnd()) {
      if (Accept("REFERENCES")) {
        ReferencedTable(child);
      } else {
        Advance();
      }
    }
  }
  void System() { AddDb("mysql"); }

  // -- statements
  void Statement() {
    result_.kind = StatementKind::kDdl;
    if (AtEnd()) {
      result_.kind = StatementKind::kControl;
      return;
    }
    if (Accept("CREATE")) return Create();
    if (Accept("ALTER")) return Alter();
    if (Accept("DROP")) return Drop();
    if (Accept("RENAME")) return Rename();
    if (Accept("TRUNCATE")) {
      Accept("TABLE");
      return ObjectName();
    }
    if (AcceptAny({"GRANT", "REVOKE", "INSTALL", "UNINSTALL"})) return System();
    if (AcceptAny({"ANALYZE", "OPTIMIZE", "REPAIR"})) {
      AcceptAny({"NO_WRITE_TO_BINLOG", "LOCAL"});
      if (AcceptAny({"TABLE", "TABLES"})) return ObjectNameList();
      return Incomplete();
    }
    if (IsWord("SET")) return Set();
    if (Accept("FLUSH")) {
      if (Contains("PRIVILEGES")) return System();
      result_.kind = StatementKind::kControl;
      return;
    }
    if (IsWord("BEGIN")) {
      // BEGIN [WORK] is transaction control; BEGIN NOT ATOMIC ... is a compound statement.
      if (IsWord("NOT", 1)) return Dml();
      result_.kind = StatementKind::kControl;
      return;
    }
    if (IsAnyWord({"COMMIT",  "ROLLBACK", "SAVEPOINT",  "RELEASE", "XA",    "START", "LOCK",
                   "UNLOCK",  "USE",      "DO",         "SELECT",  "SHOW",  "CHECK", "CHECKSUM",
                   "HANDLER", "PREPARE",  "DEALLOCATE", "KILL",    "RESET", "PURGE", "BINLOG",
                   "HELP",    "DESCRIBE", "DESC",       "EXPLAIN"})) {
      result_.kind = StatementKind::kControl;
      return;
    }
    if (IsAnyWord({"INSERT", "REPLACE", "UPDATE", "DELETE", "LOAD", "CALL", "WITH", "EXECUTE",
                   "VALUES", "TABLE"})) {
      return Dml();
    }
    // An unknown statement: its unqualified names would belong to the default database.
    AddSessionDb();
    Incomplete();
  }

  void Create() {
    SkipObjectModifiers();
    if (AcceptAny({"DATABASE", "SCHEMA"})) {
      SkipIfExists();
      Name name;
      if (ParseName(&name)) {
        AddDb(name.name);
      } else {
        Incomplete();
      }
      return;
    }
    if (Accept("TABLE")) {
      SkipIfExists();
      const Name table = TableName();
      if (IsPunct('(') && IsWord("LIKE", 1)) Advance();
      if (Accept("LIKE")) {
        const Name source = TableName();
        return AddMove(source, table, /*like=*/true);
      }
      // CREATE TABLE ... SELECT in statement format reads other tables.
      if (Contains("SELECT")) Incomplete();
      return AddReferences(table);
    }
    if (Accept("INDEX")) {
      SkipIfExists();
      Name index;
      ParseName(&index);
      if (SeekWord("ON")) return ObjectName();
      return Incomplete();
    }
    if (Accept("TRIGGER")) return Trigger();
    if (AcceptAny({"VIEW", "PROCEDURE", "EVENT", "SEQUENCE"})) {
      SkipIfExists();
      return ObjectName();
    }
    if (Accept("PACKAGE")) {
      Accept("BODY");
      SkipIfExists();
      return ObjectName();
    }
    if (Accept("FUNCTION")) {
      SkipIfExists();
      Name name;
      if (!ParseName(&name)) return Incomplete();
      // CREATE FUNCTION f RETURNS type SONAME 'lib.so' is a loadable function (mysql.func).
      if (name.db.empty() && Contains("SONAME")) return System();
      return AddObject(name);
    }
    if (AcceptAny({"USER", "ROLE", "SERVER"})) return System();
    Incomplete();  // TABLESPACE, LOGFILE GROUP, ...
  }

  // After CREATE [modifiers] TRIGGER: name, timing, event, ON table.
  void Trigger() {
    SkipIfExists();
    Name trigger;
    if (!ParseName(&trigger)) return Incomplete();
    if (!trigger.db.empty()) AddDb(trigger.db);
    if (SeekWord("ON")) return ObjectName();
    Incomplete();
  }

  void Alter() {
    SkipObjectModifiers();
    if (Accept("TABLE")) {
      SkipIfExists();
      const Name table = TableName();
      // RENAME [TO|AS] new_name moves the table; EXCHANGE PARTITION ... WITH TABLE t and
      // REFERENCES t name other tables.
      int depth = 0;
      while (!AtEnd()) {
        if (IsPunct('(')) {
          ++depth;
        } else if (IsPunct(')')) {
          --depth;
        } else if (depth <= 0 && IsWord("RENAME")) {
          Advance();
          if (AcceptAny({"TO", "AS"}) ||
              !IsAnyWord({"COLUMN", "INDEX", "KEY", "CONSTRAINT", "PARTITION"})) {
            AddMove(table, TableName(), /*like=*/false);
          }
          continue;
        } else if (depth <= 0 && IsWord("WITH") && IsWord("TABLE", 1)) {
          Advance(2);
          ObjectName();
          continue;
        } else if (IsWord("REFERENCES")) {
          Advance();
          ReferencedTable(table);
          continue;
        }
        Advance();
      }
      return;
    }
    if (AcceptAny({"DATABASE", "SCHEMA"})) {
      // The name is optional: ALTER DATABASE CHARACTER SET ... changes the default database.
      if (IsNameToken() && !(At()->type == TokenType::kWord &&
                             IsAnyWord({"DEFAULT", "CHARACTER", "CHARSET", "COLLATE", "COMMENT",
                                        "READ", "ENCRYPTION"}))) {
        AddDb(At()->text);
        return;
      }
      return AddSessionDb();
    }
    if (Accept("EVENT")) {
      SkipIfExists();
      ObjectName();
      if (SeekWord("RENAME")) {
        Accept("TO");
        ObjectName();
      }
      return;
    }
    if (AcceptAny({"VIEW", "PROCEDURE", "FUNCTION", "SEQUENCE"})) {
      SkipIfExists();
      return ObjectName();
    }
    if (Accept("PACKAGE")) {
      Accept("BODY");
      SkipIfExists();
      return ObjectName();
    }
    if (AcceptAny({"USER", "ROLE", "SERVER"})) return System();
    Incomplete();
  }

  void Drop() {
    while (AcceptAny({"TEMPORARY", "ONLINE", "OFFLINE"})) {
    }
    if (AcceptAny({"DATABASE", "SCHEMA"})) {
      SkipIfExists();
      Name name;
      if (ParseName(&name)) {
        AddDb(name.name);
      } else {
        Incomplete();
      }
      return;
    }
    if (AcceptAny({"TABLE", "TABLES", "VIEW", "SEQUENCE"})) {
      SkipIfExists();
      return ObjectNameList();
    }
    if (Accept("INDEX")) {
      SkipIfExists();
      Name index;
      ParseName(&index);
      if (SeekWord("ON")) return ObjectName();
      return Incomplete();
    }
    if (AcceptAny({"TRIGGER", "EVENT", "PROCEDURE", "FUNCTION"})) {
      SkipIfExists();
      return ObjectName();
    }
    if (Accept("PACKAGE")) {
      Accept("BODY");
      SkipIfExists();
      return ObjectName();
    }
    if (AcceptAny({"USER", "ROLE", "SERVER"})) return System();
    Incomplete();
  }

  void Rename() {
    if (AcceptAny({"TABLE", "TABLES"})) {
      SkipIfExists();
      do {
        const Name from = TableName();
        SkipWait();
        if (!Accept("TO")) return Incomplete();
        AddMove(from, TableName(), /*like=*/false);
      } while (AcceptPunct(','));
      return;
    }
    if (Accept("USER")) return System();
    Incomplete();
  }

  void Set() {
    Advance();  // SET
    if (IsWord("PASSWORD") || (IsWord("DEFAULT") && IsWord("ROLE", 1))) return System();
    if (IsWord("STATEMENT")) {
      // SET STATEMENT var=value[, ...] FOR statement: the statement is what counts.
      if (SeekWord("FOR")) return Statement();
      return Incomplete();
    }
    result_.kind = StatementKind::kControl;
  }

  void Dml() {
    result_.kind = StatementKind::kDml;
    if (AcceptAny({"INSERT", "REPLACE"})) {
      while (AcceptAny({"LOW_PRIORITY", "DELAYED", "HIGH_PRIORITY", "IGNORE"})) {
      }
      Accept("INTO");
      return ObjectName();
    }
    if (Accept("LOAD")) {
      if (SeekWord("INTO") && Accept("TABLE")) return ObjectName();
      return Incomplete();
    }
    if (Accept("DELETE")) {
      while (AcceptAny({"LOW_PRIORITY", "QUICK", "IGNORE"})) {
      }
      if (!Accept("FROM")) return Incomplete();  // DELETE t1, t2 FROM ...: multi-table
      Name name;
      if (!ParseName(&name)) return Incomplete();
      AddObject(name);
      if (IsPunct(',') || IsWord("USING")) Incomplete();  // multi-table
      return;
    }
    if (Accept("UPDATE")) {
      while (AcceptAny({"LOW_PRIORITY", "IGNORE"})) {
      }
      Name name;
      if (!ParseName(&name)) return Incomplete();
      AddObject(name);
      // Single-table: UPDATE t [[AS] alias] SET ...
      if (Accept("AS")) {
        Advance();
      } else if (IsNameToken() && !IsWord("SET")) {
        Advance();
      }
      if (!IsWord("SET")) Incomplete();
      return;
    }
    Incomplete();  // CALL, WITH, EXECUTE, compound statements
  }

  const std::vector<Token>& tokens_;
  size_t pos_;
  std::string_view session_db_;
  StatementTargets result_;
  std::vector<TableMove> moves_;
};

}  // namespace

const char* ObjectKindName(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kNone:
      return "";
    case ObjectKind::kDatabase:
      return "DATABASE";
    case ObjectKind::kTable:
      return "TABLE";
    case ObjectKind::kIndex:
      return "INDEX";
    case ObjectKind::kSequence:
      return "SEQUENCE";
    case ObjectKind::kView:
      return "VIEW";
    case ObjectKind::kProcedure:
      return "PROCEDURE";
    case ObjectKind::kFunction:
      return "FUNCTION";
    case ObjectKind::kLoadableFunction:
      return "FUNCTION (loadable)";
    case ObjectKind::kPackage:
      return "PACKAGE";
    case ObjectKind::kPackageBody:
      return "PACKAGE BODY";
    case ObjectKind::kTrigger:
      return "TRIGGER";
    case ObjectKind::kEvent:
      return "EVENT";
    case ObjectKind::kUser:
      return "USER";
    case ObjectKind::kRole:
      return "ROLE";
    case ObjectKind::kServer:
      return "SERVER";
  }
  return "";
}

bool IsStoredObject(ObjectKind kind) {
  switch (kind) {
    case ObjectKind::kView:
    case ObjectKind::kProcedure:
    case ObjectKind::kFunction:
    case ObjectKind::kPackage:
    case ObjectKind::kPackageBody:
    case ObjectKind::kTrigger:
    case ObjectKind::kEvent:
      return true;
    default:
      return false;
  }
}

DdlObject AnalyzeDdlObject(std::string_view sql, SqlSyntax syntax) {
  std::vector<Token> tokens = Lex(sql, syntax);
  return Parser(tokens, 0, "").Object();
}

std::optional<std::string> WithEventDisabledOnSlave(std::string_view sql, SqlSyntax syntax) {
  std::vector<Token> tokens = Lex(sql, syntax);
  std::optional<std::pair<size_t, size_t>> edit = Parser(tokens, 0, "").EventStatusEdit();
  if (!edit) return std::nullopt;
  const auto [begin, end] = *edit;
  std::string out(sql.substr(0, begin));
  out += begin == end ? "DISABLE ON SLAVE " : "DISABLE ON SLAVE";
  out += sql.substr(end);
  return out;
}

SqlSyntax SqlSyntax::FromSqlMode(uint64_t sql_mode) {
  SqlSyntax syntax;
  syntax.ansi_quotes = (sql_mode & kModeAnsiQuotes) != 0;
  syntax.no_backslash_escapes = (sql_mode & kModeNoBackslashEscapes) != 0;
  return syntax;
}

StatementTargets AnalyzeStatement(std::string_view sql, std::string_view session_db,
                                  SqlSyntax syntax) {
  std::vector<Token> tokens = Lex(sql, syntax);
  return Parser(tokens, 0, session_db).Run();
}

std::vector<TableMove> AnalyzeTableMoves(std::string_view sql, std::string_view session_db,
                                         SqlSyntax syntax) {
  // Executable comments run or not by the server's version: their moves are not known.
  if (sql.find("/*!") != std::string_view::npos || sql.find("/*M!") != std::string_view::npos ||
      sql.find("/*m!") != std::string_view::npos) {
    return {};
  }
  std::vector<Token> tokens = Lex(sql, syntax);
  Parser parser(tokens, 0, session_db);
  parser.Run();
  return parser.Moves();
}

}  // namespace replsync

// Weighted SQL files: header comments split the file into requests, each compiled by the script engine.
#include "bench/sql_file.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "bench/script.hpp"

namespace pgsluice::bench {

namespace {

std::string trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// The words of a statement, upper-cased, outside quotes and comments.
std::vector<std::string> words_of(std::string_view sql) {
  std::vector<std::string> words;
  std::string word;
  char quote = 0;
  for (std::size_t i = 0; i < sql.size(); ++i) {
    const char c = sql[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      while (i < sql.size() && sql[i] != '\n') ++i;
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      word += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      continue;
    }
    if (!word.empty()) words.push_back(std::move(word));
    word.clear();
    if (c == ';') words.emplace_back(";");
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

bool is_transaction_word(const std::string& w) {
  return w == "BEGIN" || w == "START" || w == "COMMIT" || w == "END" || w == "ROLLBACK" || w == "TRANSACTION" ||
         w == "WORK" || w == "ISOLATION" || w == "LEVEL" || w == "READ" || w == "ONLY" || w == "WRITE" ||
         w == "SERIALIZABLE" || w == "REPEATABLE" || w == "COMMITTED" || w == "UNCOMMITTED";
}

// The header lines: "-- weight: 3", "-- name: x", "-- type: read". Returns the key, or ""
// for an ordinary comment; throws for a line that looks like a header but is not one.
std::string header_key(const std::string& line, std::string& value, const std::string& where) {
  if (line.rfind("--", 0) != 0) return {};
  std::string rest = trim(std::string_view(line).substr(2));
  std::size_t k = 0;
  while (k < rest.size() && std::isalpha(static_cast<unsigned char>(rest[k]))) ++k;
  const std::string key = lower(rest.substr(0, k));
  if (key != "weight" && key != "name" && key != "type") return {};
  const std::string after = trim(std::string_view(rest).substr(k));
  if (after.empty() || after[0] != ':') {
    // "-- weight 3", "-- weight=3": meant as a header, written wrong. "-- name the ..." is prose.
    if (key == "name" && !after.empty() && std::isalpha(static_cast<unsigned char>(after[0]))) return {};
    throw script_error(where + ": malformed header '" + line + "' (write '-- " + key + ": VALUE')");
  }
  value = trim(std::string_view(after).substr(1));
  if (value.empty()) throw script_error(where + ": '-- " + key + ":' needs a value");
  return key;
}

std::uint32_t parse_weight(const std::string& value, const std::string& where) {
  const std::string problem = where + ": -- weight: '" + value + "' is not a whole number from 1 to " +
                              std::to_string(max_sql_file_weight);
  if (value.empty() || value.size() > 7 || !std::all_of(value.begin(), value.end(), [](unsigned char c) {
        return std::isdigit(c);
      }))
    throw script_error(problem);
  const auto w = std::stoul(value);
  if (w < 1 || w > max_sql_file_weight) throw script_error(problem);
  return static_cast<std::uint32_t>(w);
}

// Tracks quotes across lines, to know whether a line ends a statement.
struct statement_scanner {
  char quote = 0;
  std::size_t quote_line = 0;
  // True when the line ends (outside quotes and comments) with a ';'.
  bool ends_statement(const std::string& line, std::size_t line_no) {
    bool last_semicolon = false;
    for (std::size_t i = 0; i < line.size(); ++i) {
      const char c = line[i];
      if (quote) {
        if (c == quote) quote = 0;
        continue;
      }
      if (c == '\'' || c == '"') {
        quote = c;
        quote_line = line_no;
        last_semicolon = false;
      } else if (c == '-' && i + 1 < line.size() && line[i + 1] == '-') {
        break;
      } else if (c == ';') {
        last_semicolon = true;
      } else if (!std::isspace(static_cast<unsigned char>(c))) {
        last_semicolon = false;
      }
    }
    return !quote && last_semicolon;
  }
};

}  // namespace

std::string classify_sql_request(std::string_view sql) {
  const auto words = words_of(sql);
  // The first word of the first statement that is not transaction control.
  bool at_start = true;
  for (std::size_t i = 0; i < words.size(); ++i) {
    const std::string& w = words[i];
    if (w == ";") {
      at_start = true;
      continue;
    }
    if (!at_start) continue;
    if (is_transaction_word(w)) continue;
    at_start = false;
    if (w == "SELECT" || w == "VALUES" || w == "TABLE" || w == "SHOW" || w == "EXPLAIN") {
      // SELECT ... FOR UPDATE / INTO writes (locks or creates); otherwise a read.
      for (std::size_t j = i + 1; j < words.size() && words[j] != ";"; ++j)
        if (words[j] == "INTO" || (words[j] == "FOR" && j + 1 < words.size() &&
                                   (words[j + 1] == "UPDATE" || words[j + 1] == "SHARE" || words[j + 1] == "NO")))
          return "write";
      return "read";
    }
    if (w == "WITH") {
      for (std::size_t j = i + 1; j < words.size() && words[j] != ";"; ++j)
        if (words[j] == "INSERT" || words[j] == "UPDATE" || words[j] == "DELETE" || words[j] == "MERGE") return "write";
      return "read";
    }
    return "write";
  }
  return "read";
}

std::vector<sql_file_request> parse_sql_file(std::string_view file_name, std::string_view text) {
  std::vector<sql_file_request> out;
  const std::string file(file_name);
  auto where = [&](std::size_t line) { return file + ":" + std::to_string(line); };

  struct pending {
    sql_file_request request;
    bool headed = false;       // has header lines
    bool has_sql = false;      // a line that is SQL (not \set, not a comment)
    bool has_weight = false, has_name = false, has_type = false;
    std::size_t first_text_line = 0;
  };
  std::optional<pending> current;
  std::vector<std::string> lines;
  statement_scanner scanner;

  auto close = [&](std::size_t at_line) {
    if (!current) return;
    pending& p = *current;
    if (!p.has_sql) {
      if (p.headed)
        throw script_error(where(p.request.line) + ": the request starting here has no SQL statement before " +
                           (at_line ? "line " + std::to_string(at_line) : std::string("the end of the file")));
      throw script_error(where(p.first_text_line) + ": these \\set lines are followed by no SQL statement");
    }
    if (scanner.quote)
      throw script_error(where(scanner.quote_line) + ": unterminated quoted string starting here");
    // The text keeps its place in the file, so script errors name the file's lines.
    std::string script(p.first_text_line > 0 ? p.first_text_line - 1 : 0, '\n');
    for (std::size_t l = p.first_text_line; l <= lines.size() && l < (at_line ? at_line : lines.size() + 1); ++l)
      script += lines[l - 1] + "\n";
    p.request.text = std::move(script);
    if (p.request.type.empty()) p.request.type = classify_sql_request(p.request.text);
    if (p.request.name.empty()) {
      std::string name;
      for (const auto& w : words_of(p.request.text)) {
        if (w == ";" || is_transaction_word(w)) continue;
        name += (name.empty() ? "" : " ") + lower(w);
        if (name.size() >= 24) break;
      }
      p.request.name = name.empty() ? "line " + std::to_string(p.request.line) : name;
    }
    out.push_back(std::move(p.request));
    current.reset();
  };

  std::size_t pos = 0;
  while (pos <= text.size()) {
    std::size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string line(text.substr(pos, eol - pos));
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
    pos = eol + 1;
  }
  for (std::size_t n = 1; n <= lines.size(); ++n) {
    const std::string trimmed = trim(lines[n - 1]);
    std::string value;
    const std::string key = scanner.quote ? std::string() : header_key(trimmed, value, where(n));
    if (!key.empty()) {
      // A header after the SQL of a block (or after an unheaded statement) starts the next request.
      if (current && (current->has_sql || current->first_text_line != 0 || !current->headed)) close(n);
      if (!current) {
        current.emplace();
        current->request.line = n;
        current->headed = true;
      }
      pending& p = *current;
      bool& seen = key == "weight" ? p.has_weight : key == "name" ? p.has_name : p.has_type;
      if (seen) throw script_error(where(n) + ": a second '-- " + key + ":' in the request starting at line " +
                                   std::to_string(p.request.line));
      seen = true;
      if (key == "weight") p.request.weight = parse_weight(value, where(n));
      if (key == "name") {
        p.request.name = value;
        p.request.named = true;
      }
      if (key == "type") {
        p.request.type = lower(value);
        if (p.request.type != "read" && p.request.type != "write")
          throw script_error(where(n) + ": -- type: '" + value + "' is not read or write");
      }
      continue;
    }
    const bool blank_or_comment = !scanner.quote && (trimmed.empty() || trimmed.rfind("--", 0) == 0);
    if (blank_or_comment && (!current || !current->has_sql)) continue;
    if (!current) {
      current.emplace();
      current->request.line = n;
    }
    pending& p = *current;
    if (p.first_text_line == 0) p.first_text_line = n;
    if (!blank_or_comment && !(trimmed[0] == '\\' && !scanner.quote)) p.has_sql = true;
    const bool ends = scanner.ends_statement(lines[n - 1], n);
    // Unheaded statements are requests one by one.
    if (!p.headed && p.has_sql && ends) close(n + 1);
  }
  close(0);
  if (out.empty()) throw script_error(file + ": no SQL statement in the file");
  for (std::size_t i = 0; i < out.size(); ++i)
    for (std::size_t j = 0; j < i; ++j)
      if (out[i].name == out[j].name) {
        // Unnamed requests that start alike: told apart by line; a name given twice: an error.
        if (out[i].named)
          throw script_error(where(out[i].line) + ": the name '" + out[i].name + "' is used by the request at line " +
                             std::to_string(out[j].line) + " too");
        out[i].name += " (line " + std::to_string(out[i].line) + ")";
      }
  return out;
}

std::shared_ptr<const transaction_source> make_sql_file_workload(std::string_view file_name, std::string_view text,
                                                                 const std::map<std::string, std::int64_t>& variables) {
  const auto requests = parse_sql_file(file_name, text);
  auto w = std::make_shared<script_workload>();
  std::vector<request_kind> kinds;
  for (const auto& r : requests) {
    w->add_script(file_name, r.text, r.weight, variables);
    kinds.push_back({r.type, r.name});
  }
  w->set_request_kinds(std::move(kinds));
  return w;
}

}  // namespace pgsluice::bench

#include "lib/config/text_check.h"

#include <algorithm>
#include <string>

namespace nodedns::config {
namespace {

// Three `q` at text[i].
bool Triple(std::string_view text, size_t i, char q) {
  return i + 2 < text.size() && text[i] == q && text[i + 1] == q && text[i + 2] == q;
}

// Where the string opened by the quote `q` at text[start] ends: the index
// after its closing quote(s). A single-line string also ends at a newline
// (unterminated: toml++'s error to report), which is left for the caller.
// Newlines inside a multi-line string are counted into *line.
size_t StringEnd(std::string_view text, size_t start, char q, bool multi, int* line) {
  size_t i = start + (multi ? 3 : 1);
  while (i < text.size()) {
    char c = text[i];
    switch (c) {
      case '\n':
        if (!multi) return i;
        ++*line;
        ++i;
        break;
      case '\\':
        // An escape in a basic string; a backslash ending a line in a
        // multi-line one continues it (its newline is counted above).
        i += q == '"' && i + 1 < text.size() && text[i + 1] != '\n' ? 2 : 1;
        break;
      default:
        if (c == q && (!multi || Triple(text, i, q))) return i + (multi ? 3 : 1);
        ++i;
    }
  }
  return i;
}

}  // namespace

absl::Status CheckConfigText(std::string_view text, std::string_view source, bool whole_file) {
  std::string src(source);
  if (text.size() > kMaxConfigBytes) {
    return absl::InvalidArgumentError(src + ": the file has " + std::to_string(text.size()) +
                                      " bytes; a configuration may have at most " + std::to_string(kMaxConfigBytes));
  }
  int line = 1;
  auto error = [&](const std::string& reason) {
    return absl::InvalidArgumentError(src + ":" + std::to_string(line) + ": " + reason);
  };
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) {
    line += static_cast<int>(std::count(text.begin(), text.begin() + static_cast<ptrdiff_t>(nul), '\n'));
    return error("a NUL byte: the file is damaged or was not written as text");
  }
  // One switch per character outside strings and comments; comments and
  // strings are skipped whole.
  int depth = 0, dots = 0;
  bool has_setting = false;
  size_t i = 0;
  while (i < text.size()) {
    char c = text[i];
    switch (c) {
      case '\n':
        ++line;
        dots = 0;
        ++i;
        continue;
      case ' ':
      case '\t':
      case '\r':
        ++i;
        continue;
      case '#':
        i = std::min(text.find('\n', i), text.size());
        continue;
      case '"':
      case '\'':
        has_setting = true;
        i = StringEnd(text, i, c, Triple(text, i, c), &line);
        continue;
      case '[':
      case '{':
        if (++depth > kMaxConfigNesting) {
          return error("nested more than " + std::to_string(kMaxConfigNesting) + " levels deep");
        }
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      case '.':
        if (++dots > kMaxDotsPerLine) {
          return error("more than " + std::to_string(kMaxDotsPerLine) +
                       " dots outside strings on one line (a key or table nested too deeply)");
        }
        break;
      default:
        break;
    }
    has_setting = true;
    ++i;
  }
  if (!has_setting) {
    return absl::InvalidArgumentError(
        src + ": the file is empty (no table or key, only blanks or comments); refusing it, since it would reset "
              "every setting to the built-in defaults. To use the defaults on purpose, give a file with an empty "
              "table such as \"[server]\" as its only line, or start nodedns without --config");
  }
  if (whole_file && text.back() != '\n') {
    return error("the last line has no newline at its end: the file looks truncated (caught while being "
                 "written?); refusing it");
  }
  return absl::OkStatus();
}

}  // namespace nodedns::config

#include "lib/config/text_check.h"

#include <string>

namespace nodedns::config {
namespace {

enum class State { kCode, kComment, kBasic, kLiteral, kMultiBasic, kMultiLiteral };

// Three `q` at text[i].
bool Triple(std::string_view text, size_t i, char q) {
  return i + 2 < text.size() && text[i] == q && text[i + 1] == q && text[i + 2] == q;
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
  State state = State::kCode;
  int depth = 0, dots = 0;
  bool has_setting = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '\0') return error("a NUL byte: the file is damaged or was not written as text");
    if (c == '\n') {
      ++line;
      dots = 0;
      // Single-line strings and comments end here (an unterminated string is
      // toml++'s error to report).
      if (state == State::kComment || state == State::kBasic || state == State::kLiteral) state = State::kCode;
      continue;
    }
    switch (state) {
      case State::kComment:
        break;
      case State::kBasic:
        if (c == '\\') {
          if (i + 1 < text.size() && text[i + 1] != '\n') ++i;
        } else if (c == '"') {
          state = State::kCode;
        }
        break;
      case State::kLiteral:
        if (c == '\'') state = State::kCode;
        break;
      case State::kMultiBasic:
        if (c == '\\') {
          if (i + 1 < text.size() && text[i + 1] != '\n') ++i;
        } else if (c == '"' && Triple(text, i, '"')) {
          state = State::kCode;
          i += 2;
        }
        break;
      case State::kMultiLiteral:
        if (c == '\'' && Triple(text, i, '\'')) {
          state = State::kCode;
          i += 2;
        }
        break;
      case State::kCode:
        if (c == ' ' || c == '\t' || c == '\r') break;
        if (c == '#') {
          state = State::kComment;
          break;
        }
        has_setting = true;
        if (c == '"' && Triple(text, i, '"')) {
          state = State::kMultiBasic;
          i += 2;
        } else if (c == '\'' && Triple(text, i, '\'')) {
          state = State::kMultiLiteral;
          i += 2;
        } else if (c == '"') {
          state = State::kBasic;
        } else if (c == '\'') {
          state = State::kLiteral;
        } else if (c == '[' || c == '{') {
          if (++depth > kMaxConfigNesting) {
            return error("nested more than " + std::to_string(kMaxConfigNesting) + " levels deep");
          }
        } else if (c == ']' || c == '}') {
          if (depth > 0) --depth;
        } else if (c == '.') {
          if (++dots > kMaxDotsPerLine) {
            return error("more than " + std::to_string(kMaxDotsPerLine) +
                         " dots outside strings on one line (a key or table nested too deeply)");
          }
        }
        break;
    }
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

// Small text helpers for command output: word wrapping and aligned tables.
#pragma once

#include <string>
#include <vector>

namespace oneadapt::text {

/// A byte count for people: "512 B", "12.3 KB", "4.56 MB" (decimal units).
std::string human_bytes(double bytes);

/// Wraps `text` to lines of at most `width` characters, each prefixed with `indent`.
std::string wrap(const std::string& text, std::size_t width, const std::string& indent);

/// Left-aligned columns separated by two spaces; the last column is not padded.
std::string table(const std::vector<std::vector<std::string>>& rows);

/// The same rows as a Markdown table (the first row is the header), ending with a newline.
std::string markdown_table(const std::vector<std::vector<std::string>>& rows);

}  // namespace oneadapt::text

// chat/transfer: chat files in and out — our lossless JSON ("mycandy-chat" version 1) and
// SillyTavern's JSONL — as pure functions from text to records, with limits on everything a file
// can make us allocate or store (message count, dates, versions, swipe indexes).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "core/result.hpp"
#include "store/types.hpp"

namespace mc::chat {

constexpr size_t kMaxImportMessages = 200000;
constexpr size_t kMaxImportSwipes = 1000;
constexpr size_t kMaxImportSummaries = 10000;
constexpr size_t kMaxImportFacts = 10000;
constexpr int64_t kMaxDateMs = 253402300799999LL;  // 9999-12-31T23:59:59.999Z

struct ImportedChat {
    std::vector<Message> messages;
    std::vector<std::pair<Summary, int64_t>> summaries;  // With the covered message's position (-1: none).
    std::vector<Fact> facts;
    std::string title;
    int64_t created_at = 0;
    int64_t updated_at = 0;
};

// Reads a chat file: our JSON when it is an object with "format":"mycandy-chat", else JSONL.
// Errors are InvalidInput/TooLarge naming the line or the entry at fault.
Result<ImportedChat> parse_chat_file(const std::string& text);

// Our lossless JSON: the chat, its messages (oldest first), summaries (newest first, as the store
// lists them) and facts; a summary says which message it covers as a position in the file.
Json export_chat_json(const Chat& chat, const Character& character, const std::vector<Message>& messages,
                      const std::vector<Summary>& summaries, const std::vector<Fact>& facts);
// SillyTavern's chat file: a header line, then one line per message.
std::string export_chat_jsonl(const Chat& chat, const Character& character, const std::vector<Message>& messages,
                              const std::string& user_name);

// UTC "2026-11-30T13:36:43Z".
std::string iso_date(int64_t ms);
// Seconds or milliseconds since 1970, or an ISO date; 0 when unreadable or out of range.
int64_t parse_date(const Json& v);

}  // namespace mc::chat

// chat/transfer: chat files in and out — our lossless JSON ("mycandy-chat" version 1) and
// SillyTavern's JSONL — as pure functions from text to records, with limits on everything a file
// can make us allocate or store (message count, dates, versions, swipe indexes).
// Thread safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
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
    // A SillyTavern file's header line (user_name, character_name, create_date, chat_metadata,
    // and whatever else it holds), verbatim; empty when the file had none.
    Json st_header = Json::object();
};

// Reads a chat file: our JSON when it is an object with "format":"mycandy-chat", else JSONL.
// Errors are InvalidInput/TooLarge naming the line or the entry at fault.
Result<ImportedChat> parse_chat_file(const std::string& text);

// Our lossless JSON: the chat, its messages (oldest first), summaries (newest first, as the store
// lists them) and facts; a summary says which message it covers as a position in the file.
// `st_header` (a SillyTavern file's header, when the chat came from one) is kept too.
Json export_chat_json(const Chat& chat, const Character& character, const std::vector<Message>& messages,
                      const std::vector<Summary>& summaries, const std::vector<Fact>& facts,
                      const Json& st_header = Json::object());
// SillyTavern's chat file: a header line, then one line per message. A chat imported from such a
// file gets back its header and each line's own fields (send_date as written, swipe_info,
// gen_started/gen_finished, extra, ...), with what changed here written over them: the text,
// swipes, the chosen swipe, hidden (is_system). Messages written here get defaults: `user_name`
// or the character's name, an ISO date, narration (role system) as extra.type "narrator".
std::string export_chat_jsonl(const Chat& chat, const Character& character, const std::vector<Message>& messages,
                              const std::string& user_name, const Json& st_header = Json::object());

// UTC "2026-11-30T13:36:43Z".
std::string iso_date(int64_t ms);
// Milliseconds since 1970 (UTC) from any date SillyTavern writes: seconds or milliseconds (a
// number or a string of digits), ISO 8601 ("2024-09-28T10:15:02.123Z", "+02:00" offsets, no zone =
// UTC, date only), "September 28, 2024 10:15am" (its humanized form; month names in English),
// "2024-09-28@10h15m02s" and "2024-9-28 @10h 15m 2s 123ms" (its file-name form). Forms without a
// zone are SillyTavern's local time, read as UTC. 0 when unreadable or outside 1970..9999.
int64_t parse_date(const Json& v);
int64_t parse_date_text(std::string_view text);

}  // namespace mc::chat

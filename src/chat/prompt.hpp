// chat/prompt: builds the messages a turn sends to the engine from a character card and the chat
// history, within the context budget: system part first (system prompt, description, personality,
// scenario, example dialogues), then as many recent messages as fit, then post-history
// instructions. {{char}}/{{user}} (and <BOT>/<USER>) macros are substituted.
// Thread safety: pure functions (the engine's count_tokens is thread-safe).
#pragma once

#include <string>
#include <vector>

#include "cards/lorebook.hpp"
#include "chat/memory.hpp"
#include "llm/engine.hpp"
#include "store/types.hpp"

namespace mc::chat {

inline constexpr const char* kDefaultSystemPrompt =
    "Write {{char}}'s next reply in a fictional chat between {{char}} and {{user}}. Stay in character, "
    "write {{char}}'s actions and feelings between *asterisks*, keep replies vivid and personal, and never "
    "write {{user}}'s lines.";

std::string substitute_macros(std::string text, const std::string& char_name, const std::string& user_name);

struct PromptBudget {
    int context_size = 8192;
    int reply_tokens = 400;  // Kept free for the reply.
    int facts_tokens = 200;  // For retrieved (unpinned) facts.
};

struct BuiltPrompt {
    std::vector<llm::ChatMessage> messages;
    int system_tokens = 0;   // The stable part: system prompt, character, pinned facts.
    int memory_tokens = 0;   // The memory note: summary and retrieved facts.
    int history_tokens = 0;
    int post_tokens = 0;
    size_t history_used = 0;     // Messages of the history in the prompt.
    size_t history_dropped = 0;  // Older messages left out for lack of room.
    int64_t last_dropped_id = 0;  // The newest message left out (0 = none).
    std::vector<int64_t> fact_ids;  // Retrieved facts in the prompt.
    int world_tokens = 0;           // Lorebook entries in the prompt.
    std::vector<cards::FiredEntry> world_fired;    // Lorebook entries in the prompt, and why.
    std::vector<cards::FiredEntry> world_dropped;  // Matched, but left out (budget).
};

// Builds the prompt, ordered so the cached prefix survives: the stable part first (system prompt,
// character, pinned facts), then the memory note (summary of what fell out of the window and the
// facts relevant to the current message), then the recent messages, then post-history
// instructions. `image_instruction` (how to ask for a picture) joins the stable part.
// `history` is oldest first and ends with the message the reply answers.
// Lorebook entries (`world`) go where a change costs least of the cached prefix: constant entries
// (they never change) into the stable part, before or after the character definition as they
// ask; entries fired by keys into their own message after the stable part (before_char ones
// first); entries at a depth into the history, that many messages from its end.
BuiltPrompt build_prompt(const Character& character, const std::vector<Message>& history, const std::string& user_name,
                         const llm::Engine& engine, PromptBudget budget, const MemoryContext& memory = {},
                         const std::string& image_instruction = {}, const cards::Activation* world = nullptr);

}  // namespace mc::chat

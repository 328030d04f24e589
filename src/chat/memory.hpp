// chat/memory: what a character remembers of a chat, and the background work that keeps it:
//   - pinned facts (the user's, never rewritten) go into the stable part of every prompt;
//   - a rolling summary of the messages that fell out of the context window, written by the model
//     in a background job (versioned; a failed job leaves the old summary in place);
//   - facts about the user the model proposes after turns (a setting turns this off), retrieved
//     into the prompt when relevant to the current message (FTS5), within a token budget.
// Thread safety: all members may be called from any thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/settings.hpp"
#include "jobs/job_runner.hpp"
#include "llm/engine.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/memory_store.hpp"

namespace mc::chat {

struct MemoryContext {
    std::optional<Summary> summary;
    std::vector<Fact> pinned;
    std::vector<Fact> relevant;  // Unpinned facts that match the current message.
};

// The summary grows by chapters: each summary step writes only what the new part of the story adds
// (at most {{words}} words) and appends it, so the note in the prompt changes only at its end and a
// turn reads just the new chapter again. When the next chapter would take the summary past
// `memory.summary_max_tokens`, the whole summary is rewritten to half of that instead (the rewrite
// instruction, or `memory.summary_instruction`). A reply longer than asked for is cut to its size at a
// sentence's end, so the summary stays within its budget whatever the model does.
inline constexpr const char* kSummaryInstructionEn =
    "You keep the memory of a long roleplay chat between {{char}} and {{user}}. Rewrite the summary so far so that "
    "it also covers the new part of the story. Keep names, places, relationships, promises and feelings; drop "
    "small talk. Write in the past tense, at most {{words}} words. Answer with the summary only.";
inline constexpr const char* kSummaryInstructionDe =
    "Du führst das Gedächtnis eines langen Rollenspiel-Chats zwischen {{char}} und {{user}}. Schreibe die bisherige "
    "Zusammenfassung so um, dass sie auch den neuen Teil der Geschichte enthält. Behalte Namen, Orte, Beziehungen, "
    "Versprechen und Gefühle; lass Smalltalk weg. Schreibe in der Vergangenheitsform, höchstens {{words}} Wörter. "
    "Antworte nur mit der Zusammenfassung.";
inline constexpr const char* kChapterInstructionEn =
    "You keep the memory of a long roleplay chat between {{char}} and {{user}}. Below are the summary so far and a "
    "new part of the story. Write only what happens in the new part, as the summary's next paragraph: names, places, "
    "relationships, promises and feelings; no small talk. Write in the past tense, at most {{words}} words. Answer "
    "with the new paragraph only.";
inline constexpr const char* kChapterInstructionDe =
    "Du führst das Gedächtnis eines langen Rollenspiel-Chats zwischen {{char}} und {{user}}. Unten stehen die "
    "bisherige Zusammenfassung und ein neuer Teil der Geschichte. Schreibe nur, was im neuen Teil geschieht, als "
    "nächsten Absatz der Zusammenfassung: Namen, Orte, Beziehungen, Versprechen und Gefühle; kein Smalltalk. "
    "Schreibe in der Vergangenheitsform, höchstens {{words}} Wörter. Antworte nur mit dem neuen Absatz.";
inline constexpr const char* kFactInstruction =
    "Read {{user}}'s message below. List facts about {{user}} worth remembering for a long time (name, age, home, "
    "work, family, likes, dislikes, important events), one per line, each starting with \"- \". If there are none, "
    "answer NONE.";

class MemoryService {
public:
    MemoryService(store::MemoryStore& memory, store::ChatStore& chats, store::CharacterStore& characters,
                  SettingsStore& settings, std::function<std::shared_ptr<llm::Engine>()> engine);

    // Registers the "summary" and "memory_facts" job handlers.
    void register_jobs(jobs::JobRunner& runner);
    void set_runner(jobs::JobRunner* runner) { m_runner = runner; }

    MemoryContext context_for(const std::string& chat_id, const std::string& current_text);
    // After a turn: queue a summary when unsummarized messages fell out of the window
    // (`last_dropped_id` = the newest message left out, 0 = none), and fact extraction from the
    // user's message (`user_message_id`, 0 = none).
    void after_turn(const std::string& chat_id, int64_t last_dropped_id, size_t dropped_count, int64_t user_message_id);

private:
    jobs::Outcome run_summary(const Job& job, jobs::JobContext& ctx);
    jobs::Outcome run_facts(const Job& job, jobs::JobContext& ctx);
    // Runs a background generation; nullopt with `retry` set when a chat turn preempted it.
    // `cache_key` names its KV state (in memory only), so a preempted job resumes where it stopped.
    Result<std::string> generate(const std::vector<llm::ChatMessage>& messages, int max_tokens, jobs::JobContext& ctx,
                                 bool& preempted, const std::string& cache_key);

    store::MemoryStore& m_memory;
    store::ChatStore& m_chats;
    store::CharacterStore& m_characters;
    SettingsStore& m_settings;
    std::function<std::shared_ptr<llm::Engine>()> m_engine;
    jobs::JobRunner* m_runner = nullptr;
};

}  // namespace mc::chat

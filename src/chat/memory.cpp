#include "chat/memory.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <cctype>

#include "chat/prompt.hpp"
#include "core/log.hpp"

namespace mc::chat {
namespace {

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
}

// Roughly this many tokens of old messages go into one summary step.
constexpr size_t kSummaryChunkBytes = 6000;

// `text` cut to at most `max_tokens` as the prompt will count it. A reply of `max_tokens` generated
// tokens can read back as more (a tokenizer merges differently than the model sampled, and a remote
// server counts with its own tokenizer, or ignores the limit), and the summary's budget is what its
// note costs every turn. The cut ends at a sentence's end when one lies in the last half, else at a
// word's end, else at a character's.
std::string fit_tokens(const llm::Engine& engine, const std::string& text, int max_tokens) {
    if (engine.count_tokens(text) <= max_tokens) return text;
    size_t lo = 0, hi = text.size();  // The longest prefix that fits lies in [lo, hi).
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (engine.count_tokens(utf8_prefix(text, mid)) <= max_tokens) lo = mid;
        else hi = mid;
    }
    std::string cut = utf8_prefix(text, lo);
    size_t sentence = std::string::npos;
    for (size_t i = cut.size(); i-- > cut.size() / 2;) {
        if (cut[i] != '.' && cut[i] != '!' && cut[i] != '?') continue;
        size_t j = i + 1;  // Past the quotes and brackets that close the sentence.
        for (bool more = true; more && j < cut.size();) {
            more = false;
            for (std::string_view c : {"\"", "'", ")", "*", "\u201C", "\u201D", "\u2019", "\u00BB", "\u00AB"}) {
                if (std::string_view(cut).substr(j).starts_with(c)) {
                    j += c.size();
                    more = true;
                    break;
                }
            }
        }
        if (j == cut.size() || std::isspace(static_cast<unsigned char>(cut[j]))) {
            sentence = j;
            break;
        }
    }
    if (sentence != std::string::npos) {
        cut.resize(sentence);
    } else if (cut.size() < text.size() && !std::isspace(static_cast<unsigned char>(text[cut.size()]))) {
        const size_t space = cut.find_last_of(" \t\n");
        if (space != std::string::npos && space > 0) cut.resize(space);
    }
    return trim(cut);
}

}  // namespace

MemoryService::MemoryService(store::MemoryStore& memory, store::ChatStore& chats, store::CharacterStore& characters,
                             SettingsStore& settings, std::function<std::shared_ptr<llm::Engine>()> engine)
    : m_memory(memory), m_chats(chats), m_characters(characters), m_settings(settings), m_engine(std::move(engine)) {}

void MemoryService::register_jobs(jobs::JobRunner& runner) {
    runner.handle("summary", [this](const Job& job, jobs::JobContext& ctx) { return run_summary(job, ctx); });
    runner.handle("memory_facts", [this](const Job& job, jobs::JobContext& ctx) { return run_facts(job, ctx); });
    m_runner = &runner;
}

MemoryContext MemoryService::context_for(const std::string& chat_id, const std::string& current_text) {
    MemoryContext out;
    if (auto s = m_memory.summary(chat_id); s && *s) out.summary = **s;
    if (auto facts = m_memory.facts(chat_id)) {
        for (auto& f : *facts) {
            if (f.pinned) out.pinned.push_back(std::move(f));
        }
    }
    if (auto relevant = m_memory.relevant_facts(chat_id, current_text, 16)) out.relevant = std::move(*relevant);
    return out;
}

void MemoryService::after_turn(const std::string& chat_id, int64_t last_dropped_id, size_t dropped_count,
                               int64_t user_message_id) {
    if (!m_runner) return;
    const auto settings = m_settings.current();
    if (settings->boolean("memory.auto_summary") && last_dropped_id > 0) {
        int64_t covers = 0;
        if (auto s = m_memory.summary(chat_id); s && *s) covers = (*s)->covers_until_message_id;
        auto pending = m_chats.messages_between(chat_id, covers, last_dropped_id, 10000);
        const size_t unsummarized = pending ? pending->size() : dropped_count;
        if (unsummarized >= static_cast<size_t>(settings->integer("memory.summary_min_messages"))) {
            // One summary job per chat at a time; the next turn queues the next one.
            if (auto r = m_runner->submit_unique("summary", Json{{"until", last_dropped_id}}, chat_id); !r) {
                log::warn("could not queue a summary for chat ", chat_id, ": ", r.error().message);
            }
        }
    }
    if (settings->boolean("memory.auto_facts") && user_message_id > 0) {
        (void)m_runner->submit("memory_facts", Json{{"message_id", user_message_id}}, std::nullopt, chat_id);
    }
}

Result<std::string> MemoryService::generate(const std::vector<llm::ChatMessage>& messages, int max_tokens,
                                             jobs::JobContext& ctx, bool& preempted, const std::string& cache_key) {
    preempted = false;
    auto engine = m_engine();
    if (!engine) return fail(ErrorCode::Unavailable, "no language model is configured");
    llm::GenerateRequest req;
    req.priority = llm::Priority::Background;
    req.cache_key = cache_key;
    req.save_state = false;
    req.messages = messages;
    req.sampling.temperature = 0.3;
    req.sampling.max_tokens = max_tokens;
    req.sampling.repeat_penalty = 1.05;
    req.cancel = std::make_shared<std::atomic<bool>>(false);
    req.on_text = [&ctx](std::string_view) { return !ctx.cancelled(); };
    auto r = engine->generate(req);
    if (!r) return std::unexpected(r.error());
    if (r->finish == llm::FinishReason::Cancelled) {
        if (!ctx.cancelled()) preempted = true;
        return fail(ErrorCode::Unavailable, "interrupted");
    }
    return trim(r->text);
}

jobs::Outcome MemoryService::run_summary(const Job& job, jobs::JobContext& ctx) {
    if (!job.chat_id) return jobs::Outcome::failed("summary job without a chat");
    const std::string chat_id = *job.chat_id;
    const int64_t until = job.payload.value("until", int64_t{0});
    auto chat = m_chats.get(chat_id);
    if (!chat) return jobs::Outcome::failed(chat.error().message);
    auto character = m_characters.get(chat->character_id);
    if (!character) return jobs::Outcome::failed(character.error().message);
    const auto settings = m_settings.current();
    const bool german = settings->str("ui.language") == "de";
    const std::string custom = trim(settings->str("memory.summary_instruction"));
    const std::string user_name = settings->str("chat.user_name");
    const int budget = static_cast<int>(settings->integer("memory.summary_max_tokens"));
    auto engine = m_engine();
    if (!engine) return jobs::Outcome::failed("no language model is configured");
    // "{{words}}" in an instruction: a length in words for a length in tokens.
    auto instruction_for = [&](std::string text, int tokens) {
        size_t at;
        while ((at = text.find("{{words}}")) != std::string::npos) text.replace(at, 9, std::to_string(std::max(8, tokens * 2 / 3)));
        return substitute_macros(text, character->name, user_name);
    };

    // Step through the uncovered messages in chunks. Each step appends a chapter about its chunk,
    // or, when that would take the summary past the budget, rewrites the whole summary to half of it.
    int versions = 0;
    while (true) {
        int64_t covers = 0;
        std::string current;
        if (auto s = m_memory.summary(chat_id); s && *s) {
            covers = (*s)->covers_until_message_id;
            current = trim((*s)->text);
        }
        if (covers >= until) break;
        auto msgs = m_chats.messages_between(chat_id, covers, until, 400);
        if (!msgs) return jobs::Outcome::failed(msgs.error().message);
        if (msgs->empty()) break;
        std::string part;
        int64_t last = covers;
        for (const auto& m : *msgs) {
            if (!part.empty() && part.size() + m.content.size() > kSummaryChunkBytes) break;
            last = m.id;
            if (m.hidden) continue;  // Hidden messages never reach the model, summaries included.
            const std::string who = m.role == "user" ? user_name : m.role == "assistant" ? character->name : "Note";
            part += who + ": " + m.content + "\n";
        }
        const std::string ask = (current.empty() ? std::string("Summary so far: (none yet)") : "Summary so far:\n" + current) +
                                "\n\nNew part of the story:\n" + part;
        // A chapter: about an eighth of its part, within a third of the budget.
        const int chapter_tokens = std::clamp(engine->count_tokens(part) / 8, std::min(24, budget / 3), std::max(1, budget / 3));
        const bool append = !current.empty() ? engine->count_tokens(current) + chapter_tokens <= budget : true;
        const int max_tokens = append ? chapter_tokens : std::max(16, budget / 2);
        const std::string instruction =
            append ? instruction_for(german ? kChapterInstructionDe : kChapterInstructionEn, max_tokens)
                   : instruction_for(!custom.empty() ? custom : german ? kSummaryInstructionDe : kSummaryInstructionEn, max_tokens);
        bool preempted = false;
        auto text = generate({{"system", instruction}, {"user", ask}}, max_tokens, ctx, preempted, "summary:" + chat_id);
        if (preempted) return jobs::Outcome::retry();
        if (ctx.cancelled()) return jobs::Outcome::failed("cancelled");
        if (!text) return jobs::Outcome::failed("the summary could not be written: " + text.error().message);
        if (text->empty()) return jobs::Outcome::failed("the model returned an empty summary; the old one stays");
        *text = fit_tokens(*engine, *text, max_tokens);
        if (text->empty()) return jobs::Outcome::failed("the model returned an empty summary; the old one stays");
        auto stored = m_memory.add_summary(chat_id, append && !current.empty() ? current + "\n\n" + *text : *text, last, "auto");
        if (!stored) return jobs::Outcome::failed(stored.error().message);
        ++versions;
        ctx.progress(until > 0 ? static_cast<double>(last) / static_cast<double>(until) : 1.0);
    }
    auto s = m_memory.summary(chat_id);
    Json result = {{"versions_written", versions}};
    if (s && *s) result["version"] = (*s)->version;
    return jobs::Outcome::done(result);
}

jobs::Outcome MemoryService::run_facts(const Job& job, jobs::JobContext& ctx) {
    if (!job.chat_id) return jobs::Outcome::failed("fact job without a chat");
    auto message = m_chats.get_message(job.payload.value("message_id", int64_t{0}));
    if (!message) return jobs::Outcome::done({{"added", 0}});  // The message was deleted meanwhile.
    auto chat = m_chats.get(*job.chat_id);
    if (!chat) return jobs::Outcome::failed(chat.error().message);
    auto character = m_characters.get(chat->character_id);
    if (!character) return jobs::Outcome::failed(character.error().message);
    const std::string user_name = m_settings.current()->str("chat.user_name");
    const std::string instruction = substitute_macros(kFactInstruction, character->name, user_name);
    bool preempted = false;
    auto text = generate({{"system", instruction}, {"user", message->content}}, 120, ctx, preempted, "facts:" + *job.chat_id);
    if (preempted) return jobs::Outcome::retry();
    if (!text) return jobs::Outcome::failed(text.error().message);
    auto existing = m_memory.facts(*job.chat_id);
    std::vector<std::string> known;
    if (existing) {
        for (const auto& f : *existing) known.push_back(lower(trim(f.text)));
    }
    Json added = Json::array();
    size_t start = 0;
    while (start < text->size() && added.size() < 3) {
        size_t end = text->find('\n', start);
        if (end == std::string::npos) end = text->size();
        std::string line = trim(text->substr(start, end - start));
        start = end + 1;
        if (line.rfind("- ", 0) != 0) continue;  // Only list items count; "NONE" and chatter do not.
        line = trim(line.substr(2));
        if (line.size() < 3 || line.size() > 200) continue;
        if (std::find(known.begin(), known.end(), lower(line)) != known.end()) continue;
        if (auto f = m_memory.add_fact(*job.chat_id, line, false, "auto")) {
            known.push_back(lower(line));
            added.push_back(f->id);
        }
    }
    return jobs::Outcome::done({{"added", added.size()}, {"fact_ids", added}});
}

}  // namespace mc::chat

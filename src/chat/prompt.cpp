#include "chat/prompt.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <cctype>

namespace mc::chat {
namespace {

// Case-insensitive replace of every `from` in `text`.
void replace_all_ci(std::string& text, const std::string& from, const std::string& to) {
    if (from.empty()) return;
    std::string lower = text;
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string from_lower = from;
    std::transform(from_lower.begin(), from_lower.end(), from_lower.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string out;
    size_t pos = 0;
    while (true) {
        const size_t at = lower.find(from_lower, pos);
        if (at == std::string::npos) break;
        out.append(text, pos, at - pos);
        out += to;
        pos = at + from.size();
    }
    out.append(text, pos, std::string::npos);
    text = std::move(out);
}

// Tokens the template adds around one message (header and end-of-turn markers).
constexpr int kMessageOverhead = 6;

// Appends `text` to `target` on a new line.
void add_line(std::string& target, const std::string& text) {
    if (!target.empty()) target += '\n';
    target += text;
}

}  // namespace

std::string substitute_macros(std::string text, const std::string& char_name, const std::string& user_name) {
    // Most messages hold no macro: skip the four case-insensitive scans.
    if (text.find("{{") == std::string::npos && text.find('<') == std::string::npos) return text;
    replace_all_ci(text, "{{char}}", char_name);
    replace_all_ci(text, "<BOT>", char_name);
    replace_all_ci(text, "{{user}}", user_name);
    replace_all_ci(text, "<USER>", user_name);
    return text;
}

BuiltPrompt build_prompt(const Character& c, const std::vector<Message>& history, const std::string& user_name,
                         const llm::Engine& engine, PromptBudget budget, const MemoryContext& memory,
                         const std::string& image_instruction, const cards::Activation* world) {
    auto macro = [&](const std::string& s) { return substitute_macros(s, c.name, user_name); };
    // Lorebook entries by where they go.
    std::string lore_const_before, lore_const_after, lore_before, lore_after;
    std::vector<std::pair<int, std::string>> lore_depth;
    // The character's note (SillyTavern's extensions.depth_prompt, "Character's Note"): at its depth
    // (default 4) like an at-depth lorebook entry, so it stays close to the newest messages.
    if (c.extensions.is_object() && c.extensions.contains("depth_prompt") && c.extensions["depth_prompt"].is_object()) {
        const auto& d = c.extensions["depth_prompt"];
        const std::string text = d.contains("prompt") && d["prompt"].is_string() ? trim(macro(d["prompt"].get<std::string>())) : "";
        int depth = 4;
        if (d.contains("depth") && d["depth"].is_number_integer()) depth = static_cast<int>(std::clamp<int64_t>(d["depth"].get<int64_t>(), 0, 1000));
        if (!text.empty()) lore_depth.emplace_back(depth, text);
    }
    if (world) {
        for (const auto& f : world->fired) {
            const std::string text = trim(macro(f.content));
            if (text.empty()) continue;
            if (f.position == cards::LorePosition::AtDepth) {
                lore_depth.emplace_back(f.depth, text);
                continue;
            }
            const bool before = f.position == cards::LorePosition::BeforeChar;
            std::string& target = f.constant ? (before ? lore_const_before : lore_const_after) : (before ? lore_before : lore_after);
            add_line(target, text);
        }
    }
    std::string system = macro(trim(c.system_prompt).empty() ? kDefaultSystemPrompt : c.system_prompt);
    if (!lore_const_before.empty()) system += "\n\n" + lore_const_before;
    if (!trim(c.description).empty()) system += "\n\n" + macro(trim(c.description));
    if (!trim(c.personality).empty()) system += "\n\n" + macro("{{char}}'s personality: " + trim(c.personality));
    if (!trim(c.scenario).empty()) system += "\n\n" + macro("Scenario: " + trim(c.scenario));
    if (!lore_const_after.empty()) system += "\n\n" + lore_const_after;
    // Example dialogues: blocks separated by <START>.
    std::string examples;
    std::string rest = c.mes_example;
    while (!rest.empty()) {
        size_t at = rest.find("<START>");
        std::string block = trim(rest.substr(0, at));
        if (!block.empty()) examples += "\n\n" + macro(block);
        if (at == std::string::npos) break;
        rest = rest.substr(at + 7);
    }
    if (!examples.empty()) system += "\n\nExample dialogues:" + examples;
    if (!trim(image_instruction).empty()) system += "\n\n" + macro(trim(image_instruction));
    if (!memory.pinned.empty()) {
        system += "\n\nFacts to always remember:";
        for (const auto& f : memory.pinned) system += "\n- " + macro(f.text);
    }

    BuiltPrompt out;
    out.system_tokens = engine.count_tokens(system) + kMessageOverhead;
    // Keyword-fired entries change from turn to turn: after the stable part, so a change costs
    // only what follows it.
    std::string lore = lore_before;
    if (!lore_after.empty()) add_line(lore, lore_after);
    if (world) {
        out.world_fired = world->fired;
        out.world_dropped = world->dropped;
    }
    out.world_tokens = lore.empty() ? 0 : engine.count_tokens(lore) + kMessageOverhead;
    for (const auto& [depth, text] : lore_depth) out.world_tokens += engine.count_tokens(text) + kMessageOverhead;

    // The memory note changes more often than the stable part, so it comes after it.
    std::string note;
    if (memory.summary && !trim(memory.summary->text).empty()) {
        note = "[Summary of earlier events]\n" + trim(memory.summary->text);
    }
    std::string remembered;
    int fact_tokens = 0;
    for (const auto& f : memory.relevant) {
        const int t = engine.count_tokens(f.text) + 2;
        if (fact_tokens + t > budget.facts_tokens) break;
        fact_tokens += t;
        remembered += "\n- " + macro(f.text);
        out.fact_ids.push_back(f.id);
    }
    if (!remembered.empty()) note += std::string(note.empty() ? "" : "\n\n") + macro("[What {{char}} remembers]") + remembered;
    out.memory_tokens = note.empty() ? 0 : engine.count_tokens(note) + kMessageOverhead;

    std::string post = trim(macro(c.post_history_instructions));
    out.post_tokens = post.empty() ? 0 : engine.count_tokens(post) + kMessageOverhead;
    int room = budget.context_size - budget.reply_tokens - out.system_tokens - out.memory_tokens - out.post_tokens -
               out.world_tokens - 8;

    // Newest first until the room is used up; the last message always goes in. Hidden messages
    // (SillyTavern's is_system) are shown in the chat but never sent to the model.
    size_t first = history.size();
    while (first > 0) {
        const Message& m = history[first - 1];
        if (m.hidden && first != history.size()) {
            --first;
            continue;
        }
        // Greetings keep their {{user}}/{{char}} (filled in here, so a new name applies at once).
        const int t = engine.count_tokens(macro(m.content)) + kMessageOverhead;
        if (t > room && first != history.size()) break;
        room -= t;
        out.history_tokens += t;
        --first;
    }
    out.history_used = history.size() - first;
    out.history_dropped = first;
    out.last_dropped_id = first > 0 ? history[first - 1].id : 0;
    out.messages.push_back({"system", system});
    if (!lore.empty()) out.messages.push_back({"system", lore});
    if (!note.empty()) out.messages.push_back({"system", note});
    const size_t used = history.size() - first;
    for (size_t i = first; i <= history.size(); ++i) {
        // Entries at depth d go before the d-th message from the end (depth 0: after the last).
        const size_t from_end = history.size() - i;
        std::string at_depth;
        for (const auto& [depth, text] : lore_depth) {
            const size_t d = std::min<size_t>(static_cast<size_t>(depth), used);
            if (d == from_end) add_line(at_depth, text);
        }
        if (!at_depth.empty()) out.messages.push_back({"system", at_depth});
        if (i == history.size()) break;
        const Message& m = history[i];
        if (m.hidden && i + 1 != history.size()) {
            --out.history_used;
            continue;
        }
        out.messages.push_back({m.role, macro(m.content)});
    }
    if (!post.empty()) out.messages.push_back({"system", post});
    return out;
}

}  // namespace mc::chat

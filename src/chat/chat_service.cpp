#include "chat/chat_service.hpp"

#include <malloc.h>
#include <cmath>

#include "core/json.hpp"
#include "core/text.hpp"

#include <thread>

#include "chat/text_stream.hpp"
#include "core/log.hpp"

namespace mc::chat {
namespace {

// Enough recent history to fill `context_tokens` (about 3 bytes a token), newest pages first.
Result<std::vector<Message>> recent_history(store::ChatStore& chats, const std::string& chat_id, int context_tokens) {
    std::vector<Message> out;
    std::optional<int64_t> before;
    size_t bytes = 0;
    const size_t want = static_cast<size_t>(context_tokens) * 4;
    while (bytes < want) {
        auto page = chats.messages(chat_id, before, 256);
        if (!page) return std::unexpected(page.error());
        if (page->empty()) break;
        for (const auto& m : *page) bytes += m.content.size() + 16;
        before = page->front().id;
        const bool last_page = page->size() < 256;
        page->insert(page->end(), std::make_move_iterator(out.begin()), std::make_move_iterator(out.end()));
        out = std::move(*page);
        if (last_page) break;
    }
    return out;
}

}  // namespace

std::optional<TurnEvent> Turn::next_from(size_t& cursor, std::chrono::milliseconds wait, bool& ended) {
    std::unique_lock lock(m_mu);
    m_cv.wait_for(lock, wait, [&] { return cursor < m_events.size() || m_ended; });
    ended = false;
    if (cursor < m_events.size()) return m_events[cursor++];
    ended = m_ended;
    return std::nullopt;
}

void Turn::push(TurnEvent e) {
    std::lock_guard lock(m_mu);
    m_events.push_back(std::move(e));
    m_cv.notify_all();
}

void Turn::end() {
    std::lock_guard lock(m_mu);
    m_ended = true;
    m_cv.notify_all();
}

ChatService::ChatService(store::ChatStore& chats, store::CharacterStore& characters, SettingsStore& settings,
                         EngineGetter engine)
    : m_chats(chats), m_characters(characters), m_settings(settings), m_engine(std::move(engine)) {}

ChatService::~ChatService() { cancel_all(); }

Result<llm::Sampling> ChatService::turn_sampling(const TurnRequest& request) const {
    llm::Sampling sampling = request.sampling ? *request.sampling : default_sampling();
    // The model must not write the user's lines: stop when it starts a turn for them.
    const std::string user_name = m_settings.current()->str("chat.user_name");
    if (!user_name.empty()) sampling.stop.push_back("\n" + user_name + ":");
    if (auto ok = llm::validate(sampling); !ok) return std::unexpected(ok.error());
    return sampling;
}

void ChatService::join_finished() {
    std::vector<std::thread> done;
    {
        std::lock_guard lock(m_mu);
        for (auto id : m_finished) {
            auto it = m_threads.find(id);
            if (it == m_threads.end()) continue;
            done.push_back(std::move(it->second));
            m_threads.erase(it);
        }
        m_finished.clear();
    }
    for (auto& t : done) t.join();
}

Result<void> ChatService::while_idle(const std::string& chat_id, const std::function<Result<void>()>& change) {
    {
        std::lock_guard lock(m_mu);
        if (m_active.contains(chat_id)) {
            return fail(ErrorCode::Conflict, "a reply is being generated in this chat; stop it first", "id");
        }
        ++m_changing[chat_id];
    }
    Result<void> r = fail(ErrorCode::Internal, "change failed");
    try {
        r = change();
    } catch (...) {
        std::lock_guard lock(m_mu);
        if (--m_changing[chat_id] == 0) m_changing.erase(chat_id);
        throw;
    }
    std::lock_guard lock(m_mu);
    if (--m_changing[chat_id] == 0) m_changing.erase(chat_id);
    return r;
}

Result<Message> ChatService::cut_to_heard(int64_t message_id, size_t sentences) {
    auto m = m_chats.get_message(message_id);
    if (!m) return std::unexpected(m.error());
    Result<Message> saved = fail(ErrorCode::Internal, "not saved");
    auto changed = while_idle(m->chat_id, [&]() -> Result<void> {
        auto current = m_chats.get_message(message_id);
        if (!current) return std::unexpected(current.error());
        if (current->role != "assistant") return fail(ErrorCode::InvalidInput, "only a reply can be cut to what was heard", "message_id");
        const size_t swipe = static_cast<size_t>(current->swipe_id);
        if (!current->gen.is_array()) current->gen = Json::array();
        while (current->gen.size() <= swipe) current->gen.push_back(nullptr);
        Json& g = current->gen[swipe];
        if (!g.is_object()) g = Json::object();
        const std::string& text = current->swipes[swipe];
        const size_t end = spoken_prefix_end(text, sentences);
        const std::string kept = trim(std::string_view(text).substr(0, end));
        if (!kept.empty() && end < text.size()) {
            // Heard before: the earlier rest follows this one (a second cut of the same reply).
            const Json& before = g.contains("unheard") ? g["unheard"] : Json();
            g["unheard"] = std::string(text.substr(end)) + (before.is_string() ? before.get<std::string>() : std::string());
            current->swipes[swipe] = kept;
            current->status = "partial";
        }
        g["interrupted"] = true;
        g["heard_sentences"] = sentences;
        // The media as stored now: a picture job finishing meanwhile keeps its entry.
        saved = m_chats.update_message(*current, [](const Json& stored_media) { return stored_media; });
        if (!saved) return std::unexpected(saved.error());
        return {};
    });
    if (!changed) return std::unexpected(changed.error());
    return saved;
}

llm::Sampling ChatService::default_sampling() const {
    const auto s = m_settings.current();
    llm::Sampling out;
    out.temperature = s->number("llm.temperature");
    out.top_k = static_cast<int>(s->integer("llm.top_k"));
    out.top_p = s->number("llm.top_p");
    out.min_p = s->number("llm.min_p");
    out.repeat_penalty = s->number("llm.repeat_penalty");
    out.max_tokens = static_cast<int>(s->integer("llm.max_tokens"));
    return out;
}

std::shared_ptr<Turn> ChatService::running_turn(const std::string& chat_id) {
    std::lock_guard lock(m_mu);
    const auto it = m_active.find(chat_id);
    return it == m_active.end() ? nullptr : it->second;
}

bool ChatService::running(const std::string& chat_id) {
    std::lock_guard lock(m_mu);
    return m_active.contains(chat_id);
}

Result<std::shared_ptr<Turn>> ChatService::start(const std::string& chat_id, TurnRequest request) {
    auto chat = m_chats.get(chat_id);
    if (!chat) return std::unexpected(chat.error());
    auto character = m_characters.get(chat->character_id);
    if (!character) return std::unexpected(character.error());
    // Everything the turn needs is checked before the user's message is stored.
    auto sampling = turn_sampling(request);
    if (!sampling) return std::unexpected(sampling.error());
    if (request.kind == TurnKind::Send) {
        if (trim(request.content).empty()) return fail(ErrorCode::InvalidInput, "'content' must not be empty", "content");
        const auto limit = static_cast<size_t>(m_settings.current()->integer("llm.max_message_chars"));
        if (request.content.size() > limit) {
            return fail(ErrorCode::TooLarge, "'content' is longer than " + std::to_string(limit) +
                                                 " bytes (llm.max_message_chars)", "content");
        }
    }
    join_finished();
    auto turn = std::make_shared<Turn>(request.kind);
    {
        std::lock_guard lock(m_mu);
        if (m_active.contains(chat_id)) {
            return fail(ErrorCode::Conflict, "a reply is already being generated in this chat; stop it first", "chat_id");
        }
        if (m_changing.contains(chat_id)) {
            return fail(ErrorCode::Conflict, "a message in this chat is being changed; try again", "chat_id");
        }
        m_active[chat_id] = turn;
    }
    auto release = [&] {
        std::lock_guard lock(m_mu);
        m_active.erase(chat_id);
        m_idle.notify_all();
    };
    // The chat may have been deleted between the first look and registering the turn (a delete
    // waits for no turn; once registered, a delete is refused): look again.
    if (auto still = m_chats.get(chat_id); !still) {
        release();
        return std::unexpected(still.error());
    }
    const auto settings = m_settings.current();
    auto history = recent_history(m_chats, chat_id, static_cast<int>(settings->integer("llm.context_size")));
    if (!history) {
        release();
        return std::unexpected(history.error());
    }
    std::optional<Message> target;
    if (request.kind == TurnKind::Send) {
        Message m;
        m.chat_id = chat_id;
        m.role = "user";
        m.content = request.content;
        auto stored = m_chats.add_message(m);
        if (!stored) {
            release();
            return std::unexpected(stored.error());
        }
        history->push_back(*stored);
        turn->push(UserEvent{*stored});
    } else if (!history->empty() && history->back().role == "assistant") {
        target = history->back();
        turn->m_target_id = target->id;
        history->pop_back();
    } else if (history->empty()) {
        release();
        return fail(ErrorCode::Conflict, "the chat has no message to reply to", "chat_id");
    }
    try {
        std::lock_guard lock(m_mu);
        const uint64_t id = m_next_thread++;
        m_threads.emplace(id, std::thread([this, id, turn, chat_id, request = std::move(request), s = std::move(*sampling),
                                           c = std::move(*character), h = std::move(*history), target]() mutable {
            run(turn, chat_id, std::move(request), std::move(s), std::move(c), std::move(h), std::move(target));
            // Each turn is a new thread, and glibc gives threads arenas of their own: what a turn
            // freed stays mapped in its arena until trimmed. Hand it back now (the reply is stored
            // and sent), or a long-running server's RSS creeps up turn after turn (soak_bench).
            ::malloc_trim(0);
            std::lock_guard done(m_mu);
            m_finished.push_back(id);
        }));
    } catch (const std::system_error& e) {  // No thread could be started (resource limits).
        release();
        return fail(ErrorCode::Unavailable, std::string("cannot start the reply: ") + e.what());
    }
    return turn;
}

void ChatService::run(std::shared_ptr<Turn> turn, std::string chat_id, TurnRequest request, llm::Sampling sampling,
                      Character character, std::vector<Message> history, std::optional<Message> target) {

    DisplayFilter display;
    SpeechSplitter speech;
    std::string shown;
    int speech_index = 0;
    std::unique_ptr<SpeechSink> speaker;
    if (request.speak && m_speaker) {
        speaker = m_speaker(character, [turn](TurnEvent e) { turn->push(std::move(e)); }, turn->m_cancel);
    }
    std::unique_ptr<ImageSink> imager = m_imager ? m_imager(character, chat_id) : nullptr;
    size_t images_seen = 0;
    // A picture starts as soon as its tag's prompt is complete, while the reply goes on.
    auto check_images = [&] {
        const auto& prompts = display.image_prompts();
        for (; images_seen < prompts.size(); ++images_seen) {
            if (!imager) continue;
            if (auto e = imager->request(prompts[images_seen])) turn->push(std::move(*e));
        }
    };
    auto emit_sentence = [&](std::string sentence) {
        if (speaker) speaker->sentence(speech_index, sentence);
        turn->push(SpeechEvent{speech_index++, std::move(sentence)});
    };
    auto emit_display = [&](const std::string& text) {
        if (text.empty()) return;
        shown += text;
        turn->push(TokenEvent{text});
        for (auto& sentence : speech.push(text)) emit_sentence(std::move(sentence));
    };

    Result<llm::GenerateResult> result = fail(ErrorCode::Unavailable, "no language model is configured");
    BuiltPrompt prompt;
    if (auto engine = m_engine()) {
        const bool continuing = request.kind == TurnKind::Continue && target;
        if (continuing) {
            history.push_back(*target);  // Budgeted with the rest, then sent as the reply's start.
        }
        prompt = build(chat_id, character, history, *engine, sampling.max_tokens);
        llm::GenerateRequest req;
        req.cache_key = chat_id;
        req.messages = std::move(prompt.messages);
        if (continuing) {
            // The partial reply is the assistant prefix, not a finished message.
            for (auto it = req.messages.rbegin(); it != req.messages.rend(); ++it) {
                if (it->role == "assistant") {
                    req.messages.erase(std::next(it).base());
                    break;
                }
            }
            req.assistant_prefix = target->content;
        }
        req.sampling = sampling;
        req.cancel = turn->m_cancel;
        req.on_text = [&](std::string_view piece) {
            std::string shown_now = display.push(piece);
            check_images();  // A picture completed by this piece starts before its text goes out.
            emit_display(shown_now);
            return true;
        };
        result = engine->generate(req);
    }
    std::string rest = display.finish();
    check_images();
    emit_display(rest);
    for (auto& sentence : speech.finish()) emit_sentence(std::move(sentence));
    // The reply is stored with its audio, so playing it again later does not synthesize again.
    Json audio = speaker ? speaker->finish() : Json::array();
    const Json images = imager ? imager->entries() : Json::array();

    // Store what was generated: complete, or partial after a stop, a disconnect or an error.
    const bool failed = !result.has_value();
    const bool cancelled = !failed && result->finish == llm::FinishReason::Cancelled;
    const std::string status = (failed || cancelled) ? "partial" : "complete";
    std::string text = shown;
    if (request.kind != TurnKind::Continue || !target) text = trim(text);
    Result<Message> stored = fail(ErrorCode::Internal, "nothing stored");
    auto add_audio = [&](Message& m, bool replace) {
        // Audio entries belong to one swipe; a continuation adds to that swipe's, a new swipe or
        // reply starts its own.
        Json media = Json::array();
        for (const auto& e : m.media) {
            // Entries may come from an imported file: read without trusting their shape.
            const bool same = json_string_or(e, "kind", "") == "audio" && json_int_or(e, "swipe", 0) == m.swipe_id;
            if (!(replace && same)) media.push_back(e);
        }
        int64_t offset = 0;
        if (!replace) {
            for (const auto& e : media) {
                if (json_string_or(e, "kind", "") == "audio" && json_int_or(e, "swipe", 0) == m.swipe_id) {
                    offset = std::max<int64_t>(offset, json_int_or(e, "index", 0) + 1);
                }
            }
        }
        for (auto e : audio) {
            e["swipe"] = m.swipe_id;
            e["index"] = json_int_or(e, "index", 0) + offset;
            media.push_back(std::move(e));
        }
        for (auto e : images) {  // Pictures of earlier swipes stay; each belongs to its swipe.
            e["swipe"] = m.swipe_id;
            media.push_back(std::move(e));
        }
        m.media = std::move(media);
    };
    // The new media is added to what the message carries when it is written (not to the turn's
    // snapshot): a picture of an earlier swipe that finished meanwhile stays attached.
    auto with_media = [&](Message& m, bool replace) {
        return [&m, &add_audio, replace](const Json& stored_media) {
            Message fresh = m;
            fresh.media = stored_media;
            add_audio(fresh, replace);
            return fresh.media;
        };
    };
    // How this text was generated, kept with its swipe (the chat shows tokens/s, first-token time).
    auto note_gen = [&](Message& m) {
        if (!m.gen.is_array()) m.gen = Json::array();
        while (m.gen.size() < m.swipes.size()) m.gen.push_back(nullptr);
        if (result && m.swipe_id >= 0 && static_cast<size_t>(m.swipe_id) < m.gen.size()) {
            Json& g = m.gen[static_cast<size_t>(m.swipe_id)];
            // A continued reply that was cut to what was heard in a call keeps its unheard rest.
            const Json unheard = g.is_object() && g.contains("unheard") ? g["unheard"] : Json();
            g = {{"prompt_tokens", result->prompt_tokens}, {"cached_tokens", result->cached_tokens},
                 {"predicted_tokens", result->predicted_tokens}, {"prompt_ms", std::round(result->prompt_ms)},
                 {"predicted_ms", std::round(result->predicted_ms)}};
            if (turn->interrupted()) g["interrupted"] = true;
            if (!unheard.is_null()) g["unheard"] = unheard;
        }
    };
    if (target && request.kind == TurnKind::Continue) {
        Message m = *target;
        m.swipes[static_cast<size_t>(m.swipe_id)] += text;
        m.status = status;
        note_gen(m);
        stored = m_chats.update_message(m, with_media(m, false));
    } else if (target) {
        Message m = *target;
        m.swipes.push_back(text);
        m.swipe_id = static_cast<int>(m.swipes.size()) - 1;
        m.status = status;
        note_gen(m);
        stored = m_chats.update_message(m, with_media(m, true));
    } else if (!failed || !text.empty()) {
        Message m;
        m.chat_id = chat_id;
        m.role = "assistant";
        m.content = text;
        m.swipes = {text};
        m.status = status;
        note_gen(m);
        add_audio(m, true);
        stored = m_chats.add_message(m);
    }
    if (imager && stored) imager->stored(*stored);
    if (m_memory && stored) {
        const int64_t user_message_id =
            request.kind == TurnKind::Send && !history.empty() && history.back().role == "user" ? history.back().id : 0;
        m_memory->after_turn(chat_id, prompt.last_dropped_id, prompt.history_dropped, user_message_id);
    }
    if (failed) {
        log::warn("turn in chat ", chat_id, " failed: ", result.error().message);
        turn->push(ErrorEvent{result.error()});
    } else if (!stored) {
        turn->push(ErrorEvent{stored.error()});
    } else {
        turn->push(DoneEvent{*stored, result->finish, *result});
    }
    {
        std::lock_guard lock(m_mu);
        m_active.erase(chat_id);
        m_idle.notify_all();
    }
    turn->end();
}

BuiltPrompt ChatService::build(const std::string& chat_id, const Character& character,
                               const std::vector<Message>& history, const llm::Engine& engine, int reply_tokens) {
    const auto settings = m_settings.current();
    PromptBudget budget{engine.context_size(), reply_tokens, static_cast<int>(settings->integer("memory.facts_token_budget"))};
    MemoryContext memory;
    if (m_memory) {
        // Facts are looked up by what was said last.
        std::string current;
        for (auto it = history.rbegin(); it != history.rend() && current.size() < 2000; ++it) {
            current += it->content + "\n";
            if (it->role == "user") break;
        }
        memory = m_memory->context_for(chat_id, current);
    }
    const cards::Activation world = world_info(chat_id, character, history, engine);
    return build_prompt(character, history, settings->str("chat.user_name"), engine, budget, memory,
                        m_image_instruction ? m_image_instruction() : std::string(), &world);
}

cards::Activation ChatService::world_info(const std::string& chat_id, const Character& character,
                                          const std::vector<Message>& history, const llm::Engine& engine) {
    if (!m_lorebooks) return {};
    auto books = m_lorebooks->for_chat(chat_id, character.id);
    if (!books) {
        log::warn("lorebooks of chat ", chat_id, " not read: ", books.error().message);
        return {};
    }
    std::vector<std::shared_ptr<const cards::CompiledBook>> compiled;
    int scan = 0;
    {
        std::lock_guard lock(m_lore_mu);
        for (const auto& b : *books) {
            auto it = m_lore_cache.find(b.id);
            if (it == m_lore_cache.end() || it->second.first != b.updated_at) {
                auto c = cards::compile_lorebook(b.id, b.data);
                if (!c) {
                    log::warn("lorebook ", b.id, " skipped: ", c.error().message);
                    continue;
                }
                it = m_lore_cache.insert_or_assign(b.id, std::make_pair(b.updated_at, *c)).first;
            }
            compiled.push_back(it->second.second);
            scan = std::max(scan, it->second.second->scan_depth);
        }
    }
    if (compiled.empty()) return {};
    std::vector<std::string> recent;
    for (auto it = history.rbegin(); it != history.rend() && recent.size() < static_cast<size_t>(scan); ++it) {
        recent.push_back(it->content);
    }
    return cards::activate(compiled, recent, engine.context_size() / 4,
                           [&engine](const std::string& text) { return engine.count_tokens(text); });
}

Result<ChatService::Preview> ChatService::preview(const std::string& chat_id, const std::optional<std::string>& message) {
    auto chat = m_chats.get(chat_id);
    if (!chat) return std::unexpected(chat.error());
    auto character = m_characters.get(chat->character_id);
    if (!character) return std::unexpected(character.error());
    auto engine = m_engine();
    if (!engine) return fail(ErrorCode::Unavailable, "no language model is configured");
    const auto settings = m_settings.current();
    auto history = recent_history(m_chats, chat_id, static_cast<int>(settings->integer("llm.context_size")));
    if (!history) return std::unexpected(history.error());
    if (message) {
        Message m;
        m.chat_id = chat_id;
        m.role = "user";
        m.content = *message;
        history->push_back(m);
    }
    Preview out;
    out.reply_tokens = static_cast<int>(settings->integer("llm.max_tokens"));
    out.prompt = build(chat_id, *character, *history, *engine, out.reply_tokens);
    out.text = engine->format_prompt(out.prompt.messages, true);
    out.total_tokens = engine->count_tokens(out.text);
    out.context_size = engine->context_size();
    return out;
}

Result<void> ChatService::stop(const std::string& chat_id) {
    std::lock_guard lock(m_mu);
    auto it = m_active.find(chat_id);
    if (it == m_active.end()) return fail(ErrorCode::NotFound, "no reply is being generated in this chat", "chat_id");
    it->second->cancel();
    return {};
}

void ChatService::cancel_all() {
    std::unordered_map<uint64_t, std::thread> threads;
    {
        std::unique_lock lock(m_mu);
        for (auto& [id, turn] : m_active) turn->cancel();
        m_idle.wait(lock, [&] { return m_active.empty(); });
        threads.swap(m_threads);
        m_finished.clear();
    }
    for (auto& [id, t] : threads) t.join();
}

}  // namespace mc::chat

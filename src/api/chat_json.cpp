#include "api/chat_json.hpp"

#include <set>

#include "api/json_io.hpp"
#include "http/server.hpp"

namespace mc::api {

Json message_to_json(const Message& m) {
    return Json{{"id", std::to_string(m.id)}, {"chat_id", m.chat_id}, {"role", m.role},        {"content", m.content},
                {"swipes", m.swipes},        {"swipe_id", m.swipe_id}, {"status", m.status},  {"created_at", m.created_at},
                {"media", m.media},          {"hidden", m.hidden},     {"name", m.name},
                {"gen", m.gen.is_array() ? m.gen : Json::array()}};
}

Json chat_to_json(const Chat& c) {
    return Json{{"id", c.id}, {"character_id", c.character_id}, {"title", c.title}, {"created_at", c.created_at},
                {"updated_at", c.updated_at}};
}

const Json* character_sampling(const Json& extensions) {
    if (!extensions.is_object() || !extensions.contains("mycandy") || !extensions["mycandy"].is_object()) return nullptr;
    const Json& m = extensions["mycandy"];
    if (!m.contains("sampling") || m["sampling"].is_null()) return nullptr;
    return &m["sampling"];
}

Result<llm::Sampling> sampling_from_json(const Json& j, llm::Sampling s, const std::string& prefix) {
    const std::string where = prefix.empty() ? "sampling" : prefix.substr(0, prefix.size() - 1);
    if (!j.is_object()) {
        return fail_because(ErrorCode::InvalidInput, "'" + where + "' must be an object (got " + std::string(json_kind(j)) + ")", where,
                            "type", {{"expected", "object"}, {"got", json_type_word(j)}});
    }
    Fields f(j, prefix);
    f.only({"temperature", "top_k", "top_p", "min_p", "repeat_penalty", "repeat_last_n", "presence_penalty",
            "frequency_penalty", "dry_multiplier", "dry_base", "dry_allowed_length", "dry_penalty_last_n", "seed",
            "max_tokens", "stop"});
    auto number = [&](const char* key, double& out, double lo, double hi) {
        if (auto v = f.opt_number(key, lo, hi)) out = *v;
    };
    auto integer = [&](const char* key, auto& out, int64_t lo, int64_t hi) {
        if (auto v = f.opt_integer(key, lo, hi)) out = static_cast<std::remove_reference_t<decltype(out)>>(*v);
    };
    number("temperature", s.temperature, 0, 5);
    number("top_p", s.top_p, 0, 1);
    number("min_p", s.min_p, 0, 1);
    number("repeat_penalty", s.repeat_penalty, 0, 5);
    number("presence_penalty", s.presence_penalty, -2, 2);
    number("frequency_penalty", s.frequency_penalty, -2, 2);
    number("dry_multiplier", s.dry_multiplier, 0, 10);
    number("dry_base", s.dry_base, 1, 10);
    integer("top_k", s.top_k, 0, 100000);
    integer("repeat_last_n", s.repeat_last_n, -1, 1048576);
    integer("dry_allowed_length", s.dry_allowed_length, 0, 1000);
    integer("dry_penalty_last_n", s.dry_last_n, -1, 1048576);
    integer("seed", s.seed, -1, 4294967295LL);
    integer("max_tokens", s.max_tokens, 1, 32768);
    if (f.has("stop")) {
        s.stop = f.strings("stop", llm::kMaxClientStops, llm::kMaxStopBytes);
        if (!f.error()) {
            for (const auto& stop : s.stop) {
                if (stop.empty()) f.reject(ErrorCode::InvalidInput, prefix + "stop", "each 'stop' string must be 1 to 256 bytes");
            }
        }
    }
    if (f.error()) return std::unexpected(*f.error());
    if (auto ok = llm::validate(s); !ok) return std::unexpected(ok.error());
    return s;
}

Json summary_to_json(const Summary& s) {
    return Json{{"version", s.version},
                {"text", s.text},
                {"covers_until_message_id", std::to_string(s.covers_until_message_id)},
                {"source", s.source},
                {"created_at", s.created_at}};
}

Json fact_to_json(const Fact& f) {
    return Json{{"id", std::to_string(f.id)}, {"chat_id", f.chat_id},       {"text", f.text},
                {"pinned", f.pinned},         {"source", f.source},         {"created_at", f.created_at},
                {"updated_at", f.updated_at}};
}

Json job_to_json(const Job& j) {
    Json out = {{"id", j.id},         {"kind", j.kind},     {"status", j.status}, {"progress", j.progress},
                {"error", j.error},   {"result", j.result}, {"created_at", j.created_at},
                {"updated_at", j.updated_at}};
    if (j.chat_id) out["chat_id"] = *j.chat_id;
    if (j.character_id) out["character_id"] = *j.character_id;
    return out;
}

Result<int64_t> parse_id(const std::string& s, const char* what, const char* field) {
    if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) {
        return fail(ErrorCode::NotFound, std::string("no ") + what + " with id '" + s.substr(0, 40) + "'", field);
    }
    return std::stoll(s);
}

Json timings_json(const llm::GenerateResult& r) {
    Json t{{"prompt_tokens", r.prompt_tokens},       {"cached_tokens", r.cached_tokens},
                {"prompt_ms", r.prompt_ms},               {"predicted_tokens", r.predicted_tokens},
                {"predicted_ms", r.predicted_ms}};
    // Speculative decoding: guesses checked and kept (llama-server's names).
    if (r.draft_tokens > 0) t["draft_n"] = r.draft_tokens, t["draft_n_accepted"] = r.accepted_tokens;
    // Tokens decoded in one batch with other chats' replies (llm.parallel).
    if (r.batched_tokens > 0) t["batched_n"] = r.batched_tokens;
    return t;
}

std::pair<std::string, Json> turn_event_json(const chat::TurnEvent& e) {
    return std::visit(
        [&](const auto& ev) -> std::pair<std::string, Json> {
            using T = std::decay_t<decltype(ev)>;
            if constexpr (std::is_same_v<T, chat::UserEvent>) {
                return {"user", {{"message", message_to_json(ev.message)}}};
            } else if constexpr (std::is_same_v<T, chat::TokenEvent>) {
                return {"token", {{"text", ev.text}}};
            } else if constexpr (std::is_same_v<T, chat::SpeechEvent>) {
                return {"speech", {{"index", ev.index}, {"text", ev.text}}};
            } else if constexpr (std::is_same_v<T, chat::DoneEvent>) {
                return {"done", {{"message", message_to_json(ev.message)},
                                 {"finish_reason", llm::finish_reason_name(ev.finish)},
                                 {"timings", timings_json(ev.timings)}}};
            } else if constexpr (std::is_same_v<T, chat::AudioEvent>) {
                return {"audio", {{"index", ev.index}, {"url", ev.url}}};
            } else if constexpr (std::is_same_v<T, chat::ImageEvent>) {
                // The job was just queued; GET /api/jobs/{id}/events follows it from here.
                return {"image", {{"job", {{"id", ev.job_id}, {"kind", "image"}, {"status", "queued"}, {"progress", 0}}},
                                  {"prompt", ev.prompt}}};
            } else if constexpr (std::is_same_v<T, chat::AudioErrorEvent>) {
                Json j = error_json(ev.error);
                j["index"] = ev.index;
                return {"audio_error", j};
            } else {
                static_assert(std::is_same_v<T, chat::ErrorEvent>);
                return {"error", error_json(ev.error)};
            }
        },
        e);
}

std::string turn_event_sse(const chat::TurnEvent& e) {
    const auto [name, data] = turn_event_json(e);
    return http::sse_event(name, data.dump(-1, ' ', false, Json::error_handler_t::replace));
}

}  // namespace mc::api

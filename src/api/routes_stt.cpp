// api/routes_stt: speech in — POST /api/stt (the recording as the body, or a multipart form) and the
// OpenAI-compatible POST /v1/audio/transcriptions (multipart: file, model, language, prompt,
// response_format json | text | verbose_json).
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <map>

#include "api/context.hpp"
#include "api/json_io.hpp"
#include "api/routes.hpp"
#include "core/log.hpp"
#include "core/text.hpp"
#include "stt/stt_service.hpp"

namespace mc::api {
namespace {

using http::Method;
using http::Request;
using http::Response;

constexpr size_t kMaxPrompt = 1000;  // Bytes; Whisper reads at most 224 tokens of it anyway.

// A form field or query value a client sent: valid UTF-8 and within `max` bytes.
Result<std::string> text_value(const std::string& value, const char* field, size_t max) {
    if (value.size() > max) return fail(ErrorCode::InvalidInput, std::string("'") + field + "' is longer than " + std::to_string(max) + " bytes", field);
    if (!utf8_valid(value)) return fail(ErrorCode::InvalidInput, std::string("'") + field + "' is not valid UTF-8", field);
    return value;
}

Result<std::string> language_value(const std::string& value, bool any_code) {
    if (value == "auto" || value == "de" || value == "en") return value;
    // OpenAI clients may name any ISO 639-1 language; the engine says whether its model knows it.
    if (any_code && value.size() >= 2 && value.size() <= 3 && value.find_first_not_of("abcdefghijklmnopqrstuvwxyz") == std::string::npos) {
        return value;
    }
    return fail(ErrorCode::InvalidInput,
                "'language' must be " + std::string(any_code ? "auto or an ISO 639-1 code such as de or en" : "auto, de or en") +
                    " (got '" + sanitize_utf8(value.substr(0, 20)) + "')",
                "language");
}

// Seconds rounded to milliseconds for the JSON answers.
double secs(double s) { return std::round(s * 1000.0) / 1000.0; }

Json segments_json(const stt::Transcript& t, bool verbose) {
    Json out = Json::array();
    int id = 0;
    for (const auto& s : t.segments) {
        Json j = {{"start", secs(s.start)}, {"end", secs(s.end)}, {"text", s.text}};
        if (verbose) {
            // OpenAI's verbose_json fields; the ones Whisper via whisper.cpp does not give are neutral.
            j["id"] = id;
            j["seek"] = 0;
            j["tokens"] = Json::array();
            j["temperature"] = 0.0;
            j["avg_logprob"] = 0.0;
            j["compression_ratio"] = 1.0;
            j["no_speech_prob"] = 0.0;
        }
        ++id;
        out.push_back(std::move(j));
    }
    return out;
}

// Transcribes while the client waits: a client that goes away (a closed tab, a cancelled
// recording, a timeout) stops the recognition, and a request queued behind another one is dropped
// without running.
Result<stt::Transcript> transcribe_while_waited_for(Context& ctx, const Request& req, std::string_view audio, stt::SttOptions o) {
    const auto t0 = std::chrono::steady_clock::now();
    o.cancel = std::make_shared<std::atomic<bool>>(false);
    Result<stt::Transcript> t = fail(ErrorCode::Internal, "not run");
    {
        http::ClientWatch watch(req, o.cancel);
        t = ctx.stt->transcribe(audio, o);
    }
    if (o.cancel->load()) {
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
        log::info("speech-to-text: stopped after ", ms, " ms: the client of ", req.path, " went away");
        return fail(ErrorCode::Unavailable, "the client went away");
    }
    return t;
}

// What a multipart form holds, each field once.
struct Form {
    const http::Part* file = nullptr;
    std::map<std::string, std::string> fields;
};

Result<Form> read_form(const Request& req, std::initializer_list<const char*> known) {
    Form form;
    for (const auto& p : req.parts) {
        if (p.name == "file") {
            if (form.file) return fail(ErrorCode::InvalidInput, "the form holds more than one 'file'", "file");
            form.file = &p;
            continue;
        }
        bool ok = false;
        for (const char* k : known) ok = ok || p.name == k;
        // Clients send arrays as "name[]" (timestamp_granularities[]): accepted, ignored.
        if (!ok && !p.name.ends_with("[]")) {
            return fail(ErrorCode::InvalidInput, "unknown field '" + sanitize_utf8(p.name.substr(0, 64)) + "'", sanitize_utf8(p.name.substr(0, 64)));
        }
        if (form.fields.count(p.name) && !p.name.ends_with("[]")) {
            return fail(ErrorCode::InvalidInput, "the form holds '" + p.name + "' more than once", p.name);
        }
        form.fields[p.name] = p.data;
    }
    return form;
}

}  // namespace

void register_stt_routes(http::Server& server, Context& ctx) {
    // The recording as the body (any Content-Type but JSON: it is decided by its bytes), language
    // and prompt in the query; or a multipart form with file, language and prompt.
    server.route(Method::Post, "/api/stt", [&ctx](const Request& req) {
        const auto t0 = std::chrono::steady_clock::now();
        if (!ctx.stt) return error_response({ErrorCode::Unavailable, "speech-to-text is not available", ""});
        std::string_view audio;
        std::string language = "";
        std::string prompt;
        if (!req.parts.empty()) {
            auto form = read_form(req, {"language", "prompt"});
            if (!form) return error_response(form.error());
            if (!form->file) return error_response({ErrorCode::InvalidInput, "the form has no 'file' part with the recording", "file"});
            audio = form->file->data;
            if (form->fields.count("language")) language = form->fields["language"];
            if (form->fields.count("prompt")) prompt = form->fields["prompt"];
        } else {
            const std::string type = req.media_type();
            if (type == "application/json" || type.ends_with("+json")) {
                return error_response({ErrorCode::UnsupportedMedia, "send the recording itself as the body (or a multipart form with 'file'), not JSON", "body"});
            }
            audio = req.body;
            for (const auto& [k, v] : req.query) {
                if (k != "language" && k != "prompt") return error_response({ErrorCode::InvalidInput, "unknown query parameter '" + sanitize_utf8(k.substr(0, 64)) + "'", sanitize_utf8(k.substr(0, 64))});
            }
            language = req.query_param("language").value_or("");
            prompt = req.query_param("prompt").value_or("");
        }
        if (!language.empty()) {
            auto l = language_value(language, false);
            if (!l) return error_response(l.error());
        }
        auto p = text_value(prompt, "prompt", kMaxPrompt);
        if (!p) return error_response(p.error());
        stt::SttOptions o;
        o.language = language;
        o.prompt = *p;
        auto t = transcribe_while_waited_for(ctx, req, audio, o);
        if (!t) return error_response(t.error());
        const double total_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
        return json_response(200, {{"text", t->text},
                                   {"language", t->language},
                                   {"segments", segments_json(*t, false)},
                                   {"duration", secs(t->duration)},
                                   {"speech_seconds", secs(t->speech_seconds)},
                                   {"timings", {{"recognize_ms", std::round(t->decode_ms)}, {"total_ms", std::round(total_ms)}}}});
    });

    server.route(Method::Post, "/v1/audio/transcriptions", [&ctx](const Request& req) {
        if (!ctx.stt) return error_response({ErrorCode::Unavailable, "speech-to-text is not available", ""});
        if (req.parts.empty()) {
            return error_response({ErrorCode::UnsupportedMedia, "send a multipart/form-data body with 'file' and 'model'", "body"});
        }
        auto form = read_form(req, {"model", "language", "prompt", "response_format", "temperature", "stream", "chunking_strategy"});
        if (!form) return error_response(form.error());
        if (!form->file) return error_response({ErrorCode::InvalidInput, "'file' is required: the recording", "file"});
        auto& f = form->fields;
        if (auto m = text_value(f.count("model") ? f["model"] : "", "model", 200); !m) return error_response(m.error());
        std::string language = f.count("language") ? f["language"] : "";
        if (!language.empty()) {
            auto l = language_value(language, true);
            if (!l) return error_response(l.error());
        }
        auto prompt = text_value(f.count("prompt") ? f["prompt"] : "", "prompt", kMaxPrompt);
        if (!prompt) return error_response(prompt.error());
        const std::string format = f.count("response_format") ? f["response_format"] : "json";
        if (format != "json" && format != "text" && format != "verbose_json") {
            return error_response({ErrorCode::InvalidInput,
                                   "response_format '" + sanitize_utf8(format.substr(0, 32)) + "' is not supported: use json, text or verbose_json",
                                   "response_format"});
        }
        if (f.count("temperature")) {
            char* end = nullptr;
            const std::string& v = f["temperature"];
            const double temp = std::strtod(v.c_str(), &end);
            if (v.empty() || v.size() > 32 || end != v.c_str() + v.size() || !(temp >= 0.0 && temp <= 1.0)) {
                return error_response({ErrorCode::InvalidInput, "'temperature' must be a number from 0 to 1", "temperature"});
            }
        }
        if (f.count("stream") && f["stream"] != "false") {
            return error_response({ErrorCode::InvalidInput, "streamed transcriptions are not supported: leave 'stream' out", "stream"});
        }
        stt::SttOptions o;
        o.language = language;
        o.prompt = *prompt;
        auto t = transcribe_while_waited_for(ctx, req, form->file->data, o);
        if (!t) return error_response(t.error());
        if (format == "text") {
            Response r;
            r.content_type = "text/plain; charset=utf-8";
            r.body = t->text + "\n";
            return r;
        }
        if (format == "json") return json_response(200, {{"text", t->text}});
        return json_response(200, {{"task", "transcribe"},
                                   {"language", t->language},
                                   {"duration", secs(t->duration)},
                                   {"text", t->text},
                                   {"segments", segments_json(*t, true)}});
    });
}

}  // namespace mc::api

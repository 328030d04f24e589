// Text-completion clients (issue 15 items 4 and 5): llama.cpp server's /completion, /tokenize,
// /detokenize, /props and /health, OpenAI's /v1/completions, Ollama's /api/chat, /api/tags and
// /api/version, KoboldCpp's /api/v1/generate, /api/v1/model and /api/extra/version, and the /v1/chat/completions fixes
// (n choices, an oversized prompt refused before a stream, integer bounds, the request log),
// against the real server and the tiny random-weight model. Requests are shaped as SillyTavern
// 1.12's "llama.cpp" text-completion connection sends them.
#include <gtest/gtest.h>

#include <chrono>
#include <sstream>
#include <tuple>
#include <string>
#include <thread>

#include "server_process.hpp"
#include "sse_client.hpp"

namespace mc::test {
namespace {

constexpr int kContext = 1024;

Json model_settings(Json extra = Json::object()) {
    Json s = {{"llm", {{"model_path", MYCANDY_TINY_MODEL}, {"context_size", kContext}, {"max_tokens", 6}, {"threads", 2}}}};
    s.merge_patch(extra);
    return s;
}

// What SillyTavern 1.12 posts to /completion for the "llama.cpp" type (its textgen-settings
// request, unused fields included: llama-server ignores what it does not know, so must we).
Json sillytavern_body(const std::string& prompt, int n_predict, bool stream) {
    return Json{{"prompt", prompt},
                {"model", ""},
                {"max_new_tokens", n_predict},
                {"max_tokens", n_predict},
                {"logprobs", nullptr},
                {"temperature", 0.7},
                {"top_p", 0.5},
                {"typical_p", 1},
                {"typical", 1},
                {"sampler_seed", -1},
                {"min_p", 0},
                {"repetition_penalty", 1.2},
                {"frequency_penalty", 0},
                {"presence_penalty", 0},
                {"top_k", -1},
                {"skew", 0},
                {"min_tokens", 0},
                {"add_bos_token", true},
                {"smoothing_factor", 0},
                {"smoothing_curve", 1},
                {"dry_allowed_length", 2},
                {"dry_multiplier", 0},
                {"dry_base", 1.75},
                {"dry_sequence_breakers", "[\"\\n\",\":\",\"\\\"\",\"*\"]"},
                {"dry_penalty_last_n", 0},
                {"sampler_priority", {"temperature", "dynamic_temperature", "quadratic_sampling", "top_k", "top_p"}},
                {"stopping_strings", {"\nUser:", "<|eot_id|>"}},
                {"stop", {"\nUser:", "<|eot_id|>"}},
                {"truncation_length", kContext},
                {"ban_eos_token", false},
                {"skip_special_tokens", true},
                {"top_a", 0},
                {"tfs", 1},
                {"mirostat_mode", 0},
                {"mirostat_tau", 5},
                {"mirostat_eta", 0.1},
                {"custom_token_bans", ""},
                {"banned_strings", Json::array()},
                {"api_type", "llamacpp"},
                {"api_server", "http://127.0.0.1:8000"},
                {"legacy_api", false},
                {"sampler_order", {6, 0, 1, 3, 4, 2, 5}},
                {"n_predict", n_predict},
                {"n_probs", 0},
                {"stream", stream},
                {"cache_prompt", true},
                {"ignore_eos", false},
                {"repeat_penalty", 1.2},
                {"repeat_last_n", 0},
                {"penalize_nl", false},
                {"grammar", ""},
                {"xtc_threshold", 0.1},
                {"xtc_probability", 0},
                {"top_n_sigma", 0},
                {"min_keep", 0},
                {"samplers", {"penalties", "dry", "top_k", "typ_p", "tfs_z", "min_p", "top_p", "xtc", "temperature"}}};
}

const std::string kPrompt =
    "<|start_header_id|>system<|end_header_id|>\n\nYou are Mia.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
    "Hallo Mia!<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n";

class Completion : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_server = new ServerProcess(model_settings());
        settled_health(*s_server);
    }
    static void TearDownTestSuite() {
        delete s_server;
        s_server = nullptr;
    }
    httplib::Client c() const {
        auto client = s_server->client();
        client.set_read_timeout(60, 0);
        return client;
    }
    httplib::Result post(const std::string& path, const Json& body) const {
        return c().Post(path.c_str(), body.dump(), "application/json");
    }
    // Data lines of an SSE body, parsed ("[DONE]" kept as the string).
    static std::vector<Json> data_lines(const std::string& body) {
        std::vector<Json> out;
        size_t at = 0;
        while ((at = body.find("data: ", at)) != std::string::npos) {
            const size_t end = body.find('\n', at);
            const std::string d = body.substr(at + 6, end - at - 6);
            out.push_back(d == "[DONE]" ? Json("[DONE]") : Json::parse(d));
            at = end;
        }
        return out;
    }
    static ServerProcess* s_server;
};

ServerProcess* Completion::s_server = nullptr;

TEST_F(Completion, CompletionWithoutStreamingAnswersAsLlamaServer) {
    auto r = post("/completion", {{"prompt", kPrompt}, {"n_predict", 5}, {"seed", 7}});
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = body_json(r);
    EXPECT_TRUE(j["content"].is_string());
    EXPECT_EQ(j["stop"], true);
    EXPECT_EQ(j["tokens_predicted"], 5) << r->body;
    EXPECT_EQ(j["stop_type"], "limit");
    EXPECT_EQ(j["model"], "tiny.gguf");
    EXPECT_GT(j["tokens_evaluated"].get<int>(), 20);
    EXPECT_EQ(j["timings"]["predicted_n"], 5);
    EXPECT_EQ(j["timings"]["prompt_n"].get<int>() + j["timings"]["cache_n"].get<int>(), j["tokens_evaluated"].get<int>());
    EXPECT_EQ(j["generation_settings"]["n_predict"], 5);
    EXPECT_EQ(j["generation_settings"]["n_ctx"], kContext);
    EXPECT_EQ(j["content"].get<std::string>().find("<|"), std::string::npos) << "control tokens in the text";
    // cache_prompt (on by default): the same prompt again reuses all but the last token.
    r = post("/completion", {{"prompt", kPrompt}, {"n_predict", 1}});
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_GE(body_json(r)["timings"]["cache_n"].get<int>(), j["tokens_evaluated"].get<int>() - 1) << r->body;
    // cache_prompt false: read again from the start.
    r = post("/completion", {{"prompt", kPrompt}, {"n_predict", 1}, {"cache_prompt", false}});
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["timings"]["cache_n"], 0) << r->body;
}

TEST_F(Completion, StreamedCompletionEqualsTheUnstreamedOneAndEndsWithTheSummary) {
    // Greedy and uncached, so both runs compute the same tokens.
    const Json base = {{"prompt", kPrompt}, {"n_predict", 6}, {"temperature", 0}, {"cache_prompt", false}};
    auto plain = post("/completion", base);
    ASSERT_EQ(plain->status, 200) << plain->body;
    Json streamed_body = base;
    streamed_body["stream"] = true;
    auto streamed = post("/completion", streamed_body);
    ASSERT_TRUE(streamed);
    ASSERT_EQ(streamed->status, 200);
    EXPECT_NE(streamed->get_header_value("Content-Type").find("text/event-stream"), std::string::npos);
    const auto lines = data_lines(streamed->body);
    ASSERT_GE(lines.size(), 2u) << streamed->body;
    std::string text;
    for (size_t i = 0; i + 1 < lines.size(); ++i) {
        EXPECT_EQ(lines[i]["stop"], false) << lines[i];
        text += lines[i]["content"].get<std::string>();
    }
    const Json& last = lines.back();
    EXPECT_EQ(last["stop"], true) << last;
    EXPECT_EQ(last["content"], "");
    EXPECT_EQ(last["tokens_predicted"], 6);
    EXPECT_EQ(last["stop_type"], "limit");
    EXPECT_TRUE(last["timings"].is_object());
    EXPECT_EQ(text, body_json(plain)["content"]);
    EXPECT_EQ(streamed->body.find("[DONE]"), std::string::npos) << "llama-server's /completion sends no [DONE]";
}

TEST_F(Completion, AStopStringEndsTheTextBeforeIt) {
    const Json base = {{"prompt", kPrompt}, {"n_predict", 8}, {"temperature", 0}, {"cache_prompt", false}};
    auto first = post("/completion", base);
    ASSERT_EQ(first->status, 200);
    const std::string text = body_json(first)["content"];
    ASSERT_GE(text.size(), 6u) << text;
    // A stop string from the middle of what the model writes greedily.
    size_t from = text.size() / 2;
    while (from > 0 && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) --from;
    size_t len = 1;
    while (from + len < text.size() && (static_cast<unsigned char>(text[from + len]) & 0xC0) == 0x80) ++len;
    const std::string stop = text.substr(from, len);  // One whole character.
    Json with_stop = base;
    with_stop["stop"] = {stop};
    auto r = post("/completion", with_stop);
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = body_json(r);
    EXPECT_EQ(j["content"], text.substr(0, text.find(stop))) << "stop " << Json(stop);
    EXPECT_EQ(j["stop_type"], "word");
    EXPECT_EQ(j["stopping_word"], stop);
}

TEST_F(Completion, ATokenArrayPromptAndTheLlamaServerLimits) {
    auto tok = post("/tokenize", {{"content", "Once upon a time"}, {"add_special", true}});
    ASSERT_EQ(tok->status, 200) << tok->body;
    const Json tokens = body_json(tok)["tokens"];
    auto r = post("/completion", {{"prompt", tokens}, {"n_predict", 2}});
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["tokens_predicted"], 2);
    // n_predict -1 (until the context is full) is accepted; 0 and 40000 are not.
    for (const Json& n : {Json(0), Json(40000), Json(-2), Json("5")}) {
        r = post("/completion", {{"prompt", "x"}, {"n_predict", n}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << n << " " << r->body;
        EXPECT_EQ(body_json(r)["error"]["field"], "n_predict") << r->body;
        EXPECT_EQ(body_json(r)["error"]["code"], 400) << "llama-server's error shape";
    }
    for (const auto& [field, value] : std::vector<std::pair<std::string, Json>>{
             {"temperature", 9}, {"top_p", 2}, {"seed", -5}, {"stop", 5}, {"prompt", Json::object()}, {"prompt", ""},
             {"prompt", Json::array({1, -1})}, {"prompt", Json::array({"a", "b"})}, {"stream", "yes"}}) {
        Json body = {{"prompt", "x"}, {"n_predict", 1}};
        body[field] = value;
        r = post("/completion", body);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << field << "=" << value << " " << r->body;
        EXPECT_EQ(body_json(r)["error"]["field"], field) << r->body;
    }
    r = post("/completion", {{"prompt", Json::array({999999999})}});
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_EQ(body_json(r)["error"]["field"], "prompt") << r->body;
    r = post("/completion", {{"prompt", std::string((1 << 20) + 1, 'x')}});
    EXPECT_EQ(r->status, 413) << r->body.substr(0, 200);
}

TEST_F(Completion, AnOversizedPromptIsA400BeforeAnyStream) {
    std::string long_prompt;
    for (int i = 0; i < kContext; ++i) long_prompt += " Hallo";
    for (const bool stream : {false, true}) {
        auto r = post("/completion", {{"prompt", long_prompt}, {"stream", stream}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << r->body.substr(0, 300);
        EXPECT_EQ(body_json(r)["error"]["field"], "prompt");
        EXPECT_NE(body_json(r)["error"]["message"].get<std::string>().find("1024"), std::string::npos) << r->body;
        r = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", long_prompt}}}}, {"stream", stream}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << "stream " << stream << ": " << r->body.substr(0, 300);
        EXPECT_EQ(body_json(r)["error"]["param"], "messages") << r->body.substr(0, 300);
        r = post("/v1/completions", {{"prompt", long_prompt}, {"stream", stream}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << r->body.substr(0, 300);
        EXPECT_EQ(body_json(r)["error"]["param"], "prompt");
    }
}

TEST_F(Completion, SillyTavernsLlamaCppRequestsWork) {
    // Its connection check and context-size detection.
    auto models = c().Get("/v1/models");
    ASSERT_EQ(models->status, 200);
    auto props = c().Get("/props");
    ASSERT_EQ(props->status, 200) << props->body;
    const Json p = body_json(props);
    EXPECT_EQ(p["default_generation_settings"]["n_ctx"], kContext);
    EXPECT_EQ(p["default_generation_settings"]["params"]["n_predict"], 6);
    EXPECT_EQ(p["total_slots"], 1);
    EXPECT_EQ(p["model_path"], "tiny.gguf");
    EXPECT_NE(p["chat_template"].get<std::string>().find("start_header_id"), std::string::npos) << p["chat_template"];
    auto health = c().Get("/health");
    ASSERT_EQ(health->status, 200);
    EXPECT_EQ(body_json(health)["status"], "ok");
    // Token counting.
    auto tok = post("/tokenize", {{"content", "Hallo Mia!"}});
    ASSERT_EQ(tok->status, 200) << tok->body;
    EXPECT_GT(body_json(tok)["tokens"].size(), 1u);
    // A streamed generation, with everything it sends.
    auto streamed = post_sse(s_server->port(), "/completion", sillytavern_body(kPrompt, 4, true).dump());
    ASSERT_EQ(streamed.status, 200) << streamed.body;
    ASSERT_FALSE(streamed.events.empty());
    EXPECT_EQ(streamed.events.back().data["stop"], true);
    EXPECT_LE(streamed.events.back().data["tokens_predicted"].get<int>(), 4);
    auto plain = post("/completion", sillytavern_body(kPrompt, 3, false));
    ASSERT_EQ(plain->status, 200) << plain->body;
    EXPECT_LE(body_json(plain)["tokens_predicted"].get<int>(), 3);
    EXPECT_EQ(body_json(plain)["generation_settings"]["top_k"], 0) << "top_k -1 is off";
}

TEST_F(Completion, TokenizeAndDetokenizeRoundTrip) {
    const std::string text = "Hallo Mia, wie geht's? Grüße aus Köln 🌧️ <|eot_id|>";
    auto tok = post("/tokenize", {{"content", text}});
    ASSERT_EQ(tok->status, 200) << tok->body;
    const Json tokens = body_json(tok)["tokens"];
    EXPECT_EQ(tokens.back(), 128009) << "special-token text is the special token";
    auto detok = post("/detokenize", {{"tokens", tokens}});
    ASSERT_EQ(detok->status, 200) << detok->body;
    EXPECT_EQ(body_json(detok)["content"], text);
    // add_special puts the model's BOS first; parse_special false keeps "<|eot_id|>" as text.
    auto bos = post("/tokenize", {{"content", "Hallo"}, {"add_special", true}});
    EXPECT_EQ(body_json(bos)["tokens"][0], 128000) << bos->body;
    auto plain = post("/tokenize", {{"content", "<|eot_id|>"}, {"parse_special", false}});
    EXPECT_GT(body_json(plain)["tokens"].size(), 1u) << plain->body;
    // with_pieces: each token with its text.
    auto pieces = post("/tokenize", {{"content", "Hallo Mia"}, {"with_pieces", true}});
    ASSERT_EQ(pieces->status, 200) << pieces->body;
    std::string joined;
    const Json piece_list = body_json(pieces)["tokens"];
    for (const auto& t : piece_list) joined += t["piece"].get<std::string>();
    EXPECT_EQ(joined, "Hallo Mia");
    // Ids outside the vocabulary, wrong types.
    auto bad = post("/detokenize", {{"tokens", {1, 200000}}});
    EXPECT_EQ(bad->status, 400) << bad->body;
    EXPECT_EQ(body_json(bad)["error"]["field"], "tokens");
    EXPECT_NE(body_json(bad)["error"]["message"].get<std::string>().find("tokens[1]"), std::string::npos) << bad->body;
    bad = post("/detokenize", {{"tokens", {"a"}}});
    EXPECT_EQ(bad->status, 400) << bad->body;
    bad = post("/tokenize", {{"content", 5}});
    EXPECT_EQ(bad->status, 400) << bad->body;
    EXPECT_EQ(body_json(bad)["error"]["field"], "content");
    auto empty = post("/detokenize", {{"tokens", Json::array()}});
    EXPECT_EQ(body_json(empty)["content"], "");
}

TEST_F(Completion, V1CompletionsWithAndWithoutStreaming) {
    auto r = post("/v1/completions", {{"model", "x"}, {"prompt", "Once upon a time"}, {"max_tokens", 3}, {"n", 2}, {"seed", 5}});
    ASSERT_EQ(r->status, 200) << r->body;
    Json j = body_json(r);
    EXPECT_EQ(j["object"], "text_completion");
    ASSERT_EQ(j["choices"].size(), 2u);
    EXPECT_EQ(j["choices"][1]["index"], 1);
    EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 6);
    EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 6);
    // echo puts the prompt before the text.
    r = post("/v1/completions", {{"prompt", {"Once upon"}}, {"max_tokens", 1}, {"echo", true}});
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["choices"][0]["text"].get<std::string>().rfind("Once upon", 0), 0u) << r->body;
    // Streaming: chunks, the finish, usage, [DONE].
    r = post("/v1/completions", {{"prompt", "Once upon a time"}, {"max_tokens", 4}, {"stream", true},
                                 {"stream_options", {{"include_usage", true}}}});
    ASSERT_EQ(r->status, 200) << r->body;
    const auto lines = data_lines(r->body);
    ASSERT_GE(lines.size(), 4u) << r->body;
    EXPECT_EQ(lines.back(), "[DONE]");
    const Json& usage = lines[lines.size() - 2];
    EXPECT_EQ(usage["usage"]["completion_tokens"], 4) << usage;
    const Json& finish = lines[lines.size() - 3];
    EXPECT_EQ(finish["choices"][0]["finish_reason"], "length") << finish;
    for (size_t i = 0; i + 3 < lines.size(); ++i) {
        EXPECT_EQ(lines[i]["object"], "text_completion");
        EXPECT_TRUE(lines[i]["choices"][0]["finish_reason"].is_null());
    }
    for (const auto& [field, value] : std::vector<std::pair<std::string, Json>>{
             {"n", 0}, {"n", 17}, {"max_tokens", 0}, {"suffix", "end"}, {"prompt", 5}, {"temperature", "hot"}}) {
        Json body = {{"prompt", "x"}};
        body[field] = value;
        r = post("/v1/completions", body);
        EXPECT_EQ(r->status, 400) << field << " " << r->body;
        EXPECT_EQ(body_json(r)["error"]["param"], field) << r->body;
    }
}

TEST_F(Completion, ChatCompletionsAnswersNChoicesAndRefusesTooMany) {
    const Json messages = {{{"role", "user"}, {"content", "Hallo Mia!"}}};
    auto r = post("/v1/chat/completions", {{"messages", messages}, {"n", 3}, {"max_tokens", 2}});
    ASSERT_EQ(r->status, 200) << r->body;
    const Json j = body_json(r);
    ASSERT_EQ(j["choices"].size(), 3u) << r->body;
    for (int i = 0; i < 3; ++i) {
        EXPECT_EQ(j["choices"][i]["index"], i);
        EXPECT_EQ(j["choices"][i]["message"]["role"], "assistant");
    }
    EXPECT_EQ(j["usage"]["completion_tokens"], 6);
    // Streaming: each choice's chunks carry its index.
    r = post("/v1/chat/completions", {{"messages", messages}, {"n", 2}, {"max_tokens", 2}, {"stream", true}});
    ASSERT_EQ(r->status, 200);
    int finishes[2] = {0, 0};
    for (const auto& line : data_lines(r->body)) {
        if (line.is_string()) continue;
        const Json& c = line["choices"][0];
        if (!c["finish_reason"].is_null()) ++finishes[c["index"].get<int>()];
    }
    EXPECT_EQ(finishes[0], 1) << r->body;
    EXPECT_EQ(finishes[1], 1) << r->body;
    for (const Json& n : {Json(0), Json(17), Json(2.5)}) {
        r = post("/v1/chat/completions", {{"messages", messages}, {"n", n}});
        EXPECT_EQ(r->status, 400) << r->body;
        EXPECT_EQ(body_json(r)["error"]["param"], "n") << r->body;
    }
}

TEST_F(Completion, RangeErrorsWriteIntegersAsIntegers) {
    auto r = post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "x"}}}}, {"max_tokens", 40000}});
    ASSERT_EQ(r->status, 400);
    const std::string message = body_json(r)["error"]["message"];
    EXPECT_NE(message.find("32768"), std::string::npos) << message;
    EXPECT_EQ(message.find(".000000"), std::string::npos) << message;
    r = c().Patch("/api/settings", R"({"llm":{"context_size":99999999}})", "application/json");
    ASSERT_EQ(r->status, 400) << r->body;
    EXPECT_NE(body_json(r)["error"]["message"].get<std::string>().find("between 256 and 1048576"), std::string::npos) << r->body;
}

TEST_F(Completion, EveryRequestIsLoggedWithoutItsText) {
    post("/v1/chat/completions", {{"messages", {{{"role", "user"}, {"content", "Geheimnis-Wort-17"}}}}, {"max_tokens", 1}});
    post("/completion", {{"prompt", "Geheimnis-Wort-18"}, {"n_predict", 1}, {"stream", true}});
    c().Get("/props");
    c().Get("/nope");
    // A request's line is written once its response has gone out, so it may follow the response
    // by a moment: wait (up to 10 s) for the last four.
    std::string log;
    for (int i = 0; i < 1000; ++i) {
        log = read_file(s_server->log_path());
        if (log.find("HTTP GET /props 200 ") != std::string::npos && log.find("HTTP GET /nope 404 ") != std::string::npos &&
            log.find("HTTP POST /completion 200 ") != std::string::npos && log.find("HTTP POST /v1/chat/completions 200 ") != std::string::npos) {
            break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_NE(log.find("HTTP POST /v1/chat/completions 200 "), std::string::npos) << log.substr(log.size() > 3000 ? log.size() - 3000 : 0);
    EXPECT_NE(log.find("HTTP POST /completion 200 "), std::string::npos);
    EXPECT_NE(log.find("HTTP GET /props 200 "), std::string::npos);
    EXPECT_NE(log.find("HTTP GET /nope 404 "), std::string::npos);
    EXPECT_NE(log.find(" ms"), std::string::npos);
    EXPECT_EQ(log.find("Geheimnis-Wort"), std::string::npos) << "message text in the log";
}

// Ollama's API as its clients (the ollama libraries, Open WebUI) use it: the version, the model
// list, and /api/chat streamed as NDJSON by default or answered as one object with stream:false,
// with its options honoured.
TEST_F(Completion, OllamaChatStreamsNdjsonByDefaultAndAnswersOneObjectWithoutStreaming) {
    auto version = c().Get("/api/version");
    ASSERT_EQ(version->status, 200) << version->body;
    EXPECT_FALSE(body_json(version)["version"].get<std::string>().empty());
    auto tags = c().Get("/api/tags");
    ASSERT_EQ(tags->status, 200) << tags->body;
    const Json models = body_json(tags)["models"];
    ASSERT_EQ(models.size(), 1u) << tags->body;
    EXPECT_EQ(models[0]["name"], "tiny.gguf");
    EXPECT_EQ(models[0]["model"], "tiny.gguf");
    EXPECT_EQ(models[0]["details"]["format"], "gguf");

    // Greedy: the first request fills the prompt cache; those after it start from the same state,
    // so they compute the same tokens.
    const Json messages = {{{"role", "system"}, {"content", "You are Mia."}}, {{"role", "user"}, {"content", "Hallo Mia!"}}};
    const Json options = {{"temperature", 0}, {"num_predict", 6}, {"seed", 3}, {"top_k", 40}, {"top_p", 0.9}};
    ASSERT_EQ(post("/api/chat", {{"model", "tiny"}, {"messages", messages}, {"options", options}, {"stream", false}})->status, 200);
    auto streamed = post("/api/chat", {{"model", "tiny"}, {"messages", messages}, {"options", options}});
    ASSERT_EQ(streamed->status, 200) << streamed->body;
    EXPECT_EQ(streamed->get_header_value("Content-Type"), "application/x-ndjson");
    std::vector<Json> lines;
    std::istringstream in(streamed->body);
    for (std::string line; std::getline(in, line);) {
        ASSERT_FALSE(line.empty()) << "one object a line: " << streamed->body;
        lines.push_back(Json::parse(line));
    }
    ASSERT_GE(lines.size(), 2u) << streamed->body;
    std::string text;
    for (size_t i = 0; i + 1 < lines.size(); ++i) {
        EXPECT_EQ(lines[i]["done"], false) << lines[i];
        EXPECT_EQ(lines[i]["model"], "tiny.gguf");
        EXPECT_EQ(lines[i]["message"]["role"], "assistant");
        text += lines[i]["message"]["content"].get<std::string>();
    }
    const Json& last = lines.back();
    EXPECT_EQ(last["done"], true) << last;
    EXPECT_EQ(last["done_reason"], "length") << "options.num_predict 6";
    EXPECT_EQ(last["eval_count"], 6) << last;
    EXPECT_GT(last["prompt_eval_count"].get<int>(), 5) << last;
    EXPECT_GE(last["total_duration"].get<int64_t>(), last["eval_duration"].get<int64_t>()) << last;
    EXPECT_EQ(last["message"]["content"], "");
    EXPECT_EQ(text.find("<|"), std::string::npos) << "control tokens in the text";

    auto plain = post("/api/chat", {{"model", "tiny"}, {"messages", messages}, {"options", options}, {"stream", false}});
    ASSERT_EQ(plain->status, 200) << plain->body;
    EXPECT_NE(plain->get_header_value("Content-Type").find("application/json"), std::string::npos);
    const Json one = body_json(plain);
    EXPECT_EQ(one["done"], true);
    EXPECT_EQ(one["message"]["role"], "assistant");
    EXPECT_EQ(one["message"]["content"], text) << "streamed and not, the same greedy reply";
    EXPECT_EQ(one["eval_count"], 6);

    // options.stop: the reply ends before the stop string.
    ASSERT_GE(text.size(), 4u) << text;
    size_t from = text.size() / 2;
    while (from > 0 && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) --from;
    size_t len = 1;
    while (from + len < text.size() && (static_cast<unsigned char>(text[from + len]) & 0xC0) == 0x80) ++len;
    const std::string stop = text.substr(from, len);
    Json with_stop = options;
    with_stop["stop"] = {stop};
    auto stopped = post("/api/chat", {{"messages", messages}, {"options", with_stop}, {"stream", false}});
    ASSERT_EQ(stopped->status, 200) << stopped->body;
    EXPECT_EQ(body_json(stopped)["message"]["content"], text.substr(0, text.find(stop))) << "stop " << Json(stop);
    EXPECT_EQ(body_json(stopped)["done_reason"], "stop");
    // options.num_predict -1: as long as the context allows (here: until the model stops or 1024).
    auto unlimited = post("/api/chat", {{"messages", messages}, {"options", {{"num_predict", -1}, {"stop", {"a", "e", "i", "o", " "}}}}, {"stream", false}});
    ASSERT_EQ(unlimited->status, 200) << unlimited->body;
}

TEST_F(Completion, OllamaChatRefusesBadInputNamingTheField) {
    const Json messages = {{{"role", "user"}, {"content", "x"}}};
    for (const auto& [field, options, expected] : std::vector<std::tuple<std::string, Json, std::string>>{
             {"temperature", 9, "options.temperature"}, {"top_p", 2, "options.top_p"}, {"top_k", "x", "options.top_k"},
             {"num_predict", 0, "options.num_predict"}, {"num_predict", 40000, "options.num_predict"},
             {"num_predict", -3, "options.num_predict"}, {"seed", -5, "options.seed"}, {"stop", 5, "options.stop"},
             {"stop", Json::array({1}), "options.stop"}, {"repeat_penalty", 99, "options.repeat_penalty"},
             {"min_p", -1, "options.min_p"}, {"num_ctx", 0, "options.num_ctx"}}) {
        auto r = post("/api/chat", {{"messages", messages}, {"options", {{field, options}}}, {"stream", false}});
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << field << "=" << options << " " << r->body;
        const Json e = body_json(r);
        EXPECT_TRUE(e["error"].is_string()) << "Ollama's error shape: " << r->body;
        EXPECT_EQ(e["field"], expected) << r->body;
        EXPECT_NE(e["error"].get<std::string>().find(expected), std::string::npos) << r->body;
    }
    for (const auto& [field, value] : std::vector<std::pair<std::string, Json>>{
             {"messages", Json::array()}, {"messages", "hi"}, {"messages", Json::array({{{"role", "tool"}, {"content", "x"}}})},
             {"stream", "yes"}, {"options", "hot"}, {"format", "json"}, {"format", Json{{"type", "object"}}}, {"model", 5},
             {"tools", Json::array({{{"type", "function"}}})}}) {
        Json body = {{"messages", messages}, {"stream", false}};
        body[field] = value;
        auto r = post("/api/chat", body);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << field << "=" << value << " " << r->body;
        EXPECT_EQ(body_json(r)["field"], field) << r->body;
    }
    // Like every JSON route: another Content-Type is refused (a web page cannot post it as a form).
    auto form = c().Post("/api/chat", R"({"messages":[{"role":"user","content":"x"}]})", "application/x-www-form-urlencoded");
    ASSERT_TRUE(form);
    EXPECT_EQ(form->status, 415);
}

// KoboldCpp's API as KoboldAI Lite and SillyTavern's KoboldCpp type (streaming off) use it.
TEST_F(Completion, KoboldGenerateAnswersResultsAndHonoursItsSamplers) {
    auto version = c().Get("/api/extra/version");
    ASSERT_EQ(version->status, 200) << version->body;
    EXPECT_EQ(body_json(version)["result"], "KoboldCpp");
    EXPECT_TRUE(body_json(version)["version"].is_string());
    auto model = c().Get("/api/v1/model");
    ASSERT_EQ(model->status, 200) << model->body;
    EXPECT_EQ(body_json(model)["result"], "koboldcpp/tiny.gguf");
    // What KoboldAI Lite posts (unused fields included); greedy, the cache filled first.
    Json body = {{"prompt", kPrompt}, {"max_length", 6}, {"max_context_length", kContext}, {"temperature", 0},
                 {"top_p", 0.92}, {"top_k", 100}, {"top_a", 0}, {"typical", 1}, {"tfs", 1}, {"rep_pen", 1.07},
                 {"rep_pen_range", 360}, {"rep_pen_slope", 0.7}, {"sampler_order", {6, 0, 1, 3, 4, 2, 5}},
                 {"sampler_seed", 42}, {"min_p", 0}, {"quiet", true}, {"use_default_badwordsids", false},
                 {"genkey", "KCPP1234"}, {"n", 1}};
    ASSERT_EQ(post("/api/v1/generate", body)->status, 200);
    auto r = post("/api/v1/generate", body);
    ASSERT_EQ(r->status, 200) << r->body;
    Json j = body_json(r);
    ASSERT_EQ(j["results"].size(), 1u) << r->body;
    const std::string text = j["results"][0]["text"];
    EXPECT_EQ(j["results"][0]["finish_reason"], "length");
    EXPECT_EQ(j["results"][0]["completion_tokens"], 6) << "max_length 6";
    EXPECT_GT(j["results"][0]["prompt_tokens"].get<int>(), 20);
    EXPECT_EQ(text.find("<|"), std::string::npos) << "control tokens in the text";
    // stop_sequence: the text ends before it.
    ASSERT_GE(text.size(), 4u) << text;
    size_t from = text.size() / 2;
    while (from > 0 && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) --from;
    size_t len = 1;
    while (from + len < text.size() && (static_cast<unsigned char>(text[from + len]) & 0xC0) == 0x80) ++len;
    const std::string stop = text.substr(from, len);
    body["stop_sequence"] = {stop};
    r = post("/api/v1/generate", body);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(body_json(r)["results"][0]["text"], text.substr(0, text.find(stop))) << "stop " << Json(stop);
    EXPECT_EQ(body_json(r)["results"][0]["finish_reason"], "stop");

    for (const auto& [field, value] : std::vector<std::pair<std::string, Json>>{
             {"max_length", 0}, {"max_length", 40000}, {"max_length", "5"}, {"max_context_length", 0}, {"temperature", 9},
             {"top_p", 2}, {"top_k", 1.5}, {"rep_pen", 9}, {"rep_pen_range", -5}, {"sampler_seed", -5},
             {"stop_sequence", 5}, {"stop_sequence", Json::array({1})}, {"prompt", 5}, {"prompt", ""},
             {"prompt", Json::array({"a"})}}) {
        Json bad = {{"prompt", "x"}, {"max_length", 1}};
        bad[field] = value;
        r = post("/api/v1/generate", bad);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 400) << field << "=" << value << " " << r->body;
        EXPECT_EQ(body_json(r)["error"]["field"], field) << r->body;
        EXPECT_FALSE(body_json(r)["detail"]["msg"].get<std::string>().empty()) << r->body;
    }
    r = post("/api/v1/generate", {{"max_length", 1}});
    EXPECT_EQ(r->status, 400) << r->body;
    EXPECT_EQ(body_json(r)["error"]["field"], "prompt") << r->body;
    r = post("/api/v1/generate", {{"prompt", std::string((1 << 20) + 1, 'x')}});
    EXPECT_EQ(r->status, 413) << r->body.substr(0, 200);
    std::string long_prompt;
    for (int i = 0; i < kContext; ++i) long_prompt += " Hallo";
    r = post("/api/v1/generate", {{"prompt", long_prompt}});
    EXPECT_EQ(r->status, 400) << r->body.substr(0, 300);
    EXPECT_EQ(body_json(r)["error"]["field"], "prompt");
}

// The access guard covers the new routes as it covers /v1.
TEST(CompletionAccess, TheNewRoutesNeedTheTokenAndRefuseOtherOrigins) {
    ServerProcess server(model_settings({{"server", {{"api_token", "s3cret-token-1234"}}}}));
    auto c = server.client();
    for (const std::string path : {"/completion", "/tokenize", "/detokenize", "/v1/completions", "/api/chat", "/api/v1/generate"}) {
        auto r = c.Post(path.c_str(), R"({"prompt":"x","content":"x","tokens":[1]})", "application/json");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 401) << path;
    }
    for (const std::string path : {"/props", "/health", "/api/tags", "/api/version", "/api/v1/model", "/api/extra/version"}) {
        auto r = c.Get(path.c_str());
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 401) << path;
    }
    httplib::Headers auth = {{"Authorization", "Bearer s3cret-token-1234"}};
    for (int i = 0; i < 100; ++i) {  // Until the model is loaded.
        auto h = c.Get("/health", auth);
        if (h && h->status == 200) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    auto ok = c.Post("/tokenize", auth, R"({"content":"x"})", "application/json");
    ASSERT_TRUE(ok);
    EXPECT_EQ(ok->status, 200) << ok->body;
    httplib::Headers foreign = {{"Authorization", "Bearer s3cret-token-1234"}, {"Origin", "http://evil.example"}};
    for (const std::string path : {"/completion", "/api/chat", "/api/v1/generate"}) {
        auto refused = c.Post(path.c_str(), foreign, R"({"prompt":"x","messages":[{"role":"user","content":"x"}]})", "application/json");
        ASSERT_TRUE(refused);
        EXPECT_EQ(refused->status, 403) << path;
    }
}

}  // namespace
}  // namespace mc::test

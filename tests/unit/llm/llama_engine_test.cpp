// The embedded engine with a generated tiny random-weight model: real load, template, tokenize,
// decode, sample, stream, cache reuse, stop, persist.
#include "llm/llama_engine.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <chrono>
#include <map>
#include <thread>

#include "core/text.hpp"
#include "llm/huge_pages.hpp"
#include "llm/test_model.hpp"

namespace mc::llm {
namespace {

class LlamaEngineTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_dir = (std::filesystem::temp_directory_path() / ("mc-llm-" + random_hex(6))).string();
        std::filesystem::create_directories(s_dir);
        TestModelOptions o;
        o.out = s_dir + "/tiny.gguf";
        ASSERT_TRUE(write_test_model(o));
        o.out = s_dir + "/small.gguf";
        o.size = "small";
        ASSERT_TRUE(write_test_model(o));
        // Drafts for speculative decoding: another random model of the same vocabulary (its guesses
        // are mostly wrong), one of another vocabulary, and a pair whose draft guesses every token.
        TestModelOptions d;
        d.out = s_dir + "/tiny-seed7.gguf";
        d.seed = 7;
        ASSERT_TRUE(write_test_model(d));
        d = {};
        d.out = s_dir + "/tiny-qwen.gguf";
        d.vocab = std::filesystem::path(default_vocab_path()).replace_filename("ggml-vocab-qwen2.gguf").string();
        ASSERT_TRUE(write_test_model(d));
        d = {};
        d.blocks = "zero";
        d.out = s_dir + "/zero.gguf";
        ASSERT_TRUE(write_test_model(d));
        d.layers = 1;
        d.out = s_dir + "/zero-1layer.gguf";
        ASSERT_TRUE(write_test_model(d));
    }
    static void TearDownTestSuite() { std::filesystem::remove_all(s_dir); }

    static LlamaEngineOptions options(int n_ctx = 2048) {
        LlamaEngineOptions o;
        o.model_path = s_dir + "/tiny.gguf";
        o.context_size = n_ctx;
        o.threads = 2;
        o.cache_dir = s_dir + "/cache";
        return o;
    }
    static GenerateRequest request(const std::string& key, std::vector<ChatMessage> messages, int max_tokens = 16) {
        GenerateRequest r;
        r.cache_key = key;
        r.messages = std::move(messages);
        r.sampling.max_tokens = max_tokens;
        r.sampling.seed = 7;
        return r;
    }
    static inline std::string s_dir;
};

TEST_F(LlamaEngineTest, LoadsAndReportsReady) {
    LlamaEngine e(options());
    e.wait_loaded();
    EXPECT_EQ(e.status().state, "ready");
    EXPECT_EQ(e.status().model, "tiny.gguf");
    EXPECT_GT(e.count_tokens("Hallo, wie geht es dir?"), 3);
    // The model's own template (Llama-3) is applied.
    const auto p = e.format_prompt({{"system", "S"}, {"user", "U"}}, true);
    EXPECT_EQ(p, "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nU"
                 "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}

TEST_F(LlamaEngineTest, MissingOrBrokenModelIsAnErrorStateNotACrash) {
    LlamaEngineOptions o = options();
    o.model_path = s_dir + "/nope.gguf";
    LlamaEngine e(o);
    e.wait_loaded();
    EXPECT_EQ(e.status().state, "error");
    auto r = e.generate(request("x", {{"user", "hi"}}));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Unavailable);
    EXPECT_NE(r.error().message.find("nope.gguf"), std::string::npos);
}

TEST_F(LlamaEngineTest, StreamsTextAndStopsAtTheTokenLimit) {
    LlamaEngine e(options());
    std::string streamed;
    auto req = request("a", {{"user", "Erzähl mir was."}}, 12);
    req.on_text = [&](std::string_view s) {
        streamed += s;
        return true;
    };
    auto r = e.generate(req);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->text, streamed);
    EXPECT_LE(r->predicted_tokens, 12);
    EXPECT_GT(r->prompt_tokens, 5);
    EXPECT_EQ(r->cached_tokens, 0);
    EXPECT_TRUE(utf8_valid(r->text));
    EXPECT_EQ(r->text.find("<|"), std::string::npos);
}

TEST_F(LlamaEngineTest, SecondTurnEvaluatesOnlyItsNewTokens) {
    LlamaEngine e(options());
    std::vector<ChatMessage> chat = {{"system", "You are Mia, a friendly artist from Hamburg."}, {"user", "Hi Mia!"}};
    auto t1 = e.generate(request("chat1", chat));
    ASSERT_TRUE(t1);
    chat.push_back({"assistant", t1->text});
    chat.push_back({"user", "How are you today?"});
    auto t2 = e.generate(request("chat1", chat));
    ASSERT_TRUE(t2);
    const int new_tokens = e.count_tokens("How are you today?") + 12;  // Plus template markers.
    EXPECT_GE(t2->cached_tokens, t1->cached_tokens + t1->prompt_tokens);
    EXPECT_LE(t2->prompt_tokens, new_tokens);
    // Another chat in between does not lose the first one's cache.
    ASSERT_TRUE(e.generate(request("chat2", {{"user", "Unrelated"}})));
    chat.push_back({"assistant", t2->text});
    chat.push_back({"user", "Nice."});
    auto t3 = e.generate(request("chat1", chat));
    ASSERT_TRUE(t3);
    EXPECT_LE(t3->prompt_tokens, e.count_tokens("Nice.") + 12);
}

TEST_F(LlamaEngineTest, StateSurvivesARestartOfTheEngine) {
    std::vector<ChatMessage> chat = {{"system", "You are Lena."}, {"user", "Guten Morgen!"}};
    std::string reply;
    {
        LlamaEngine e(options());
        auto t1 = e.generate(request("persist", chat));
        ASSERT_TRUE(t1);
        reply = t1->text;
    }  // Destruction saves the state.
    LlamaEngine e(options());
    chat.push_back({"assistant", reply});
    chat.push_back({"user", "Wie geht's?"});
    auto t2 = e.generate(request("persist", chat));
    ASSERT_TRUE(t2);
    EXPECT_GT(t2->cached_tokens, 10);
    EXPECT_LE(t2->prompt_tokens, e.count_tokens("Wie geht's?") + 12);
}

// The KV cache's type (llm.kv_cache_type): a quantized cache still answers, its saved states
// shrink as the type says, and a restart reuses them (a state of another type is never read).
TEST_F(LlamaEngineTest, AQuantizedCacheAnswersAndItsSavedStatesShrink) {
    std::vector<ChatMessage> chat = {{"system", "You are Lena, a painter from Hamburg who loves the harbour."},
                                     {"user", "Guten Morgen! Erzähl mir von deinem Tag am Hafen."}};
    std::map<std::string, uintmax_t> bytes;
    for (const std::string type : {"f16", "q8_0", "q4_0"}) {
        LlamaEngineOptions o = options();
        o.model_path = s_dir + "/small.gguf";  // 32-wide heads: a quantized cache's blocks fit.
        o.kv_type = type;
        o.cache_dir = s_dir + "/cache-" + type;
        std::string reply;
        {
            LlamaEngine e(o);
            e.wait_loaded();
            ASSERT_EQ(e.status().state, "ready") << type << ": " << e.status().detail;
            auto t = e.generate(request("kv", chat));
            ASSERT_TRUE(t) << type << ": " << t.error().message;
            EXPECT_GT(t->predicted_tokens, 0) << type;
            reply = t->text;
        }  // Destruction saves the state.
        for (const auto& f : std::filesystem::recursive_directory_iterator(o.cache_dir)) {
            if (f.path().extension() == ".state") bytes[type] += f.file_size();
        }
        ASSERT_GT(bytes[type], 0u) << type;
        LlamaEngine again(o);
        auto next = chat;
        next.push_back({"assistant", reply});
        next.push_back({"user", "Und dann?"});
        auto t2 = again.generate(request("kv", next));
        ASSERT_TRUE(t2);
        EXPECT_GT(t2->cached_tokens, 10) << type << ": the saved state was not reused";
    }
    // The tiny model's 16-wide heads cannot hold 32-value blocks: a clear error, not a crash.
    LlamaEngineOptions narrow = options();
    narrow.kv_type = "q8_0";
    LlamaEngine e(narrow);
    e.wait_loaded();
    EXPECT_EQ(e.status().state, "error");
    EXPECT_NE(e.status().detail.find("llm.kv_cache_type"), std::string::npos) << e.status().detail;
    std::printf("saved state: f16 %ju bytes, q8_0 %ju (%.2f), q4_0 %ju (%.2f)\n", bytes["f16"], bytes["q8_0"],
                static_cast<double>(bytes["q8_0"]) / static_cast<double>(bytes["f16"]), bytes["q4_0"],
                static_cast<double>(bytes["q4_0"]) / static_cast<double>(bytes["f16"]));
    EXPECT_LT(static_cast<double>(bytes["q8_0"]), 0.6 * static_cast<double>(bytes["f16"]));
    EXPECT_LT(static_cast<double>(bytes["q4_0"]), 0.35 * static_cast<double>(bytes["f16"]));
}

// llm.huge_pages: the weights are read into memory of the engine's own, backed by 2 MiB pages
// where the kernel allows them (decode reads every weight each step), and the model answers
// exactly as with its file mapped. The tiny models' weights are too small to count: a model of
// 66 MB here.
TEST_F(LlamaEngineTest, WeightsInHugePagesAnswerAsWeightsMappedFromTheFile) {
    TestModelOptions m;
    m.out = s_dir + "/small-f16.gguf";
    m.size = "small";
    m.type = "f16";
    m.output = "random";
    ASSERT_TRUE(write_test_model(m));
    const auto file_bytes = static_cast<double>(std::filesystem::file_size(m.out));
    std::string reply[2];
    int64_t huge[2] = {-1, -1};
    for (int on = 0; on < 2; ++on) {
        LlamaEngineOptions o = options();
        o.model_path = m.out;
        o.cache_dir = "";
        o.huge_pages = on == 1;
        LlamaEngine e(o);
        e.wait_loaded();
        ASSERT_EQ(e.status().state, "ready") << e.status().detail;
        auto r = e.generate(request("pages", {{"user", "Erzähl mir vom Hafen."}}, 24));
        ASSERT_TRUE(r) << r.error().message;
        reply[on] = r->text;
        huge[on] = e.status().weights_huge_page_bytes;
        EXPECT_EQ(e.status().huge_pages_kernel, huge_pages::kernel_mode());
    }
    EXPECT_FALSE(reply[0].empty());
    EXPECT_EQ(reply[1], reply[0]);
    EXPECT_EQ(huge[0], 0);
    const std::string mode = huge_pages::kernel_mode();
    std::printf("transparent huge pages '%s': %.1f MB of the weights in 2 MiB pages (a file of %.1f MB)\n", mode.c_str(),
                static_cast<double>(huge[1]) / 1e6, file_bytes / 1e6);
    if (mode == "madvise" || mode == "always") {
        // Its matrices: the embedding and the output, 128256 x 128 f16 values each, and 0.6 MB of
        // layers; at most a 2 MiB page at each end of the buffer is left out.
        EXPECT_GE(static_cast<double>(huge[1]), 2.0 * 128256 * 128 * 2 - 4.0 * (1 << 20));
    } else {
        EXPECT_EQ(huge[1], 0);
    }
}

TEST_F(LlamaEngineTest, DroppedOldTurnsAreShiftedNotReevaluated) {
    LlamaEngine e(options());
    const std::string sys = "You are Mia. This system prompt is the stable part that must stay at the start of the context.";
    std::vector<ChatMessage> history;
    for (int i = 0; i < 6; ++i) {
        history.push_back({"user", "This is user message number " + std::to_string(i) + " with some padding words in it."});
        history.push_back({"assistant", "And this is reply number " + std::to_string(i) + ", also padded with a few words."});
    }
    std::vector<ChatMessage> all = {{"system", sys}};
    all.insert(all.end(), history.begin(), history.end());
    all.push_back({"user", "Latest question?"});
    auto full = e.generate(request("shift", all, 1));
    ASSERT_TRUE(full);
    // Next turn: the two oldest messages fell out of the window.
    std::vector<ChatMessage> trimmed = {{"system", sys}};
    trimmed.insert(trimmed.end(), history.begin() + 2, history.end());
    trimmed.push_back({"user", "Latest question?"});
    auto r = e.generate(request("shift", trimmed, 1));
    ASSERT_TRUE(r);
    EXPECT_LT(r->prompt_tokens, 30);  // Only the tail after the last reused chunk.
    EXPECT_GT(r->cached_tokens, full->prompt_tokens / 2);
}

// A generated reply is often not how its text tokenizes (random weights make that likely). When
// old turns drop out, the history after them must still be moved whole, the last reply included,
// rather than the reply being read again.
TEST_F(LlamaEngineTest, TheLastGeneratedReplyIsMovedWithTheHistoryNotReadAgain) {
    LlamaEngine e(options());
    const std::string sys = "You are Mia. This system prompt is the stable part that must stay at the start of the context.";
    std::vector<ChatMessage> history;
    for (int i = 0; i < 4; ++i) {
        history.push_back({"user", "This is user message number " + std::to_string(i) + " with some padding words in it."});
        history.push_back({"assistant", "And this is reply number " + std::to_string(i) + ", also padded with a few words."});
    }
    history.push_back({"user", "Tell me about the harbour."});
    std::vector<ChatMessage> all = {{"system", sys}};
    all.insert(all.end(), history.begin(), history.end());
    auto reply = e.generate(request("moved", all, 40));
    ASSERT_TRUE(reply);
    ASSERT_EQ(reply->predicted_tokens, 40);
    // The precondition that makes this test mean something: the reply re-tokenizes differently.
    ASSERT_NE(e.count_tokens(reply->text), 40) << "pick another seed: this reply tokenizes as it was generated";
    history.push_back({"assistant", reply->text});
    history.push_back({"user", "And the lighthouse?"});
    // Next turn: the two oldest messages fell out of the window.
    std::vector<ChatMessage> trimmed = {{"system", sys}};
    trimmed.insert(trimmed.end(), history.begin() + 2, history.end());
    auto r = e.generate(request("moved", trimmed, 1));
    ASSERT_TRUE(r);
    const int own = e.count_tokens("And the lighthouse?");
    EXPECT_LE(r->prompt_tokens, own + 12) << "read again: " << r->prompt_tokens << " tokens";
    // What was reused is right: the same prompt again is read from the cache entirely.
    auto again = e.generate(request("moved", trimmed, 1));
    ASSERT_TRUE(again);
    EXPECT_LE(again->prompt_tokens, 2);
}

// Each token's text goes out before the step that decodes it, so the first text comes a step
// sooner, and a reply that ends with a token never decodes it (no one would use that step's
// output): it ends a step sooner. Seen from outside, the cache then holds the prompt and every
// token of the reply but the last, which the next turn reads with its prompt.
TEST_F(LlamaEngineTest, AReplysLastTokenIsHandedOutWithoutADecodeStep) {
    LlamaEngine e(options());
    const std::vector<ChatMessage> m = {{"system", "You are Mia."}, {"user", "Hello there, tell me something."}};
    auto first = e.generate(request("last", m, 6));
    ASSERT_TRUE(first);
    ASSERT_EQ(first->predicted_tokens, 6);
    ASSERT_EQ(first->finish, FinishReason::Length);
    // The same chat, continuing the reply: what the cache has of it is kept.
    auto more = request("last", m, 1);
    more.assistant_prefix = first->text + " and";
    auto cont = e.generate(more);
    ASSERT_TRUE(cont);
    EXPECT_EQ(cont->cached_tokens, first->cached_tokens + first->prompt_tokens + 5);
}

TEST_F(LlamaEngineTest, AChangedNoteBeforeTheHistoryIsReadIntoAGapWhileTheHistoryIsReused) {
    LlamaEngine e(options());
    const std::string sys = "You are Mia, a painter from Hamburg. Stay in character.";
    std::vector<ChatMessage> history;
    for (int i = 0; i < 6; ++i) {
        history.push_back({"user", "This is user message number " + std::to_string(i) + " with some padding words in it."});
        history.push_back({"assistant", "And this is reply number " + std::to_string(i) + ", also padded with a few words."});
    }
    auto prompt = [&](const std::string& summary, const std::string& last) {
        std::vector<ChatMessage> m = {{"system", sys}, {"system", summary}};
        m.insert(m.end(), history.begin(), history.end());
        m.push_back({"user", last});
        return m;
    };
    auto first = e.generate(request("gap", prompt("Summary: they met at the harbour.", "Hi?"), 1));
    ASSERT_TRUE(first);
    // The summary grows (the history moves right), then shrinks (it moves left).
    const std::string longer = "Summary: they met at the harbour, talked about painting for hours, and agreed to meet "
                               "again at the fish market on Sunday morning.";
    auto grown = e.generate(request("gap", prompt(longer, "Hi?"), 1));
    ASSERT_TRUE(grown);
    EXPECT_LE(grown->prompt_tokens, e.count_tokens(longer) + 12);
    EXPECT_GE(grown->cached_tokens, first->prompt_tokens - e.count_tokens("Summary: they met at the harbour.") - 12);
    auto shrunk = e.generate(request("gap", prompt("Summary: a meeting.", "Hi again?"), 1));
    ASSERT_TRUE(shrunk);
    EXPECT_LE(shrunk->prompt_tokens, e.count_tokens("Summary: a meeting. Hi again?") + 16);
    // What was reused is right: the same prompt again is read from the cache entirely.
    auto again = e.generate(request("gap", prompt("Summary: a meeting.", "Hi again?"), 1));
    ASSERT_TRUE(again);
    EXPECT_LE(again->prompt_tokens, 2);
}

TEST_F(LlamaEngineTest, StopStringsEndTheReplyBeforeThem) {
    LlamaEngine e(options());
    // Learn what the model says with a fixed seed, then stop on a piece of it.
    auto first = e.generate(request("s", {{"user", "Say something."}}, 24));
    ASSERT_TRUE(first);
    ASSERT_GT(first->text.size(), 6u);
    const std::string stop = first->text.substr(first->text.size() / 2, 3);
    auto req = request("s2", {{"user", "Say something."}}, 24);
    req.sampling.stop = {stop};
    auto second = e.generate(req);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->finish, FinishReason::Stop);
    EXPECT_EQ(second->text, first->text.substr(0, first->text.find(stop)));
}

TEST_F(LlamaEngineTest, CancelStopsWithinOneToken) {
    LlamaEngine e(options());
    auto req = request("c", {{"user", "Talk."}}, 200);
    req.cancel = std::make_shared<std::atomic<bool>>(false);
    int pieces = 0;
    req.on_text = [&](std::string_view) {
        if (++pieces == 3) req.cancel->store(true);
        return true;
    };
    auto r = e.generate(req);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->finish, FinishReason::Cancelled);
    EXPECT_LE(r->predicted_tokens, 4 + 3);  // Pieces can hold back a split character.
}

TEST_F(LlamaEngineTest, SamplerValuesAreCheckedBeforeReachingLlamaCpp) {
    LlamaEngine e(options());
    auto req = request("v", {{"user", "x"}});
    req.sampling.top_p = 1.5;
    auto r = e.generate(req);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().field, "top_p");
    req.sampling.top_p = 0.9;
    req.sampling.temperature = -1;
    EXPECT_EQ(e.generate(req).error().field, "temperature");
}

// A background job cancelled while it reads a long prompt (a turn preempting it) keeps what it
// read: run again, it goes on from there. Its state never reaches the disk (save_state false).
TEST_F(LlamaEngineTest, ACancelledPromptKeepsWhatItReadAndResumesThere) {
    LlamaEngineOptions o = options(4096);
    o.cache_dir = s_dir + "/resume-cache";
    std::string long_text;
    for (int i = 0; i < 160; ++i) long_text += "The harbour light falls on old ships and quiet water. ";
    auto req = request("summary:resume", {{"system", "Summarize."}, {"user", long_text}}, 8);
    req.priority = Priority::Background;  // Reads in batches of 128.
    req.save_state = false;
    req.cancel = std::make_shared<std::atomic<bool>>(false);
    size_t cancelled_at = 0, total = 0;
    req.on_prompt_progress = [&](size_t read, size_t n) {
        total = n;
        if (read >= 384 && !req.cancel->load()) {
            cancelled_at = read;
            req.cancel->store(true);
        }
    };
    {
        LlamaEngine e(o);
        auto r = e.generate(req);
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_EQ(r->finish, FinishReason::Cancelled);
        EXPECT_EQ(r->predicted_tokens, 0);
        ASSERT_GT(total, 1000u);
        EXPECT_EQ(cancelled_at, 384u);
        // Another chat in between (the turn that preempted it), then the job again.
        ASSERT_TRUE(e.generate(request("chat", {{"user", "Hallo"}})));
        req.cancel->store(false);
        req.on_prompt_progress = nullptr;
        auto again = e.generate(req);
        ASSERT_TRUE(again) << again.error().message;
        EXPECT_EQ(again->cached_tokens, 384);
        EXPECT_EQ(static_cast<size_t>(again->prompt_tokens + again->cached_tokens), total);
        EXPECT_GT(again->predicted_tokens, 0);
    }  // Destruction saves the active state, unless its request said not to.
    for (const auto& f : std::filesystem::recursive_directory_iterator(o.cache_dir)) {
        EXPECT_EQ(f.path().filename().string().find("summary"), std::string::npos) << f.path();
    }
}

// Speculative decoding (llm.draft_model_path): the draft's guesses change the speed, never the
// reply. Greedy and seeded sampling give exactly the reply of plain decoding, with stop strings
// and the token limit landing inside a batch of guesses.
TEST_F(LlamaEngineTest, ADraftModelChangesTheSpeedNotTheReply) {
    const std::vector<std::vector<ChatMessage>> chats = {
        {{"system", "You are Lena."}, {"user", "Guten Morgen! Wie war dein Tag?"}},
        {{"user", "Tell me about the sea."}},
    };
    auto replies = [&](const LlamaEngineOptions& o, double temperature, std::vector<GenerateResult>& out) {
        LlamaEngine e(o);
        e.wait_loaded();
        out.clear();
        int i = 0;
        for (const auto& chat : chats) {
            for (int max_tokens : {24, 7}) {
                auto req = request("spec-" + std::to_string(i++), chat, max_tokens);
                req.sampling.temperature = temperature;
                // Greedy without penalties: a draft equal to the model guesses exactly.
                if (temperature == 0) req.sampling.repeat_penalty = 1.0;
                if (max_tokens == 7) req.sampling.stop = {"e"};
                auto r = e.generate(req);
                EXPECT_TRUE(r) << r.error().message;
                if (r) out.push_back(*r);
            }
        }
    };
    for (double temperature : {0.0, 0.8}) {
        LlamaEngineOptions plain = options();
        plain.cache_dir.clear();
        std::vector<GenerateResult> expected;
        replies(plain, temperature, expected);
        ASSERT_EQ(expected.size(), 4u);
        // Guessing every step (adapting would soon stop the wrong guesses), and adapting: the
        // reply is the same whether a step guesses or not.
        const std::vector<std::pair<const char*, bool>> drafts =
            temperature == 0 ? std::vector<std::pair<const char*, bool>>{{"tiny.gguf", false}, {"tiny-seed7.gguf", false}}
                             : std::vector<std::pair<const char*, bool>>{{"tiny-seed7.gguf", false}, {"tiny-seed7.gguf", true}};
        for (const auto& [draft, adaptive] : drafts) {
            SCOPED_TRACE(std::string(draft) + (adaptive ? " adaptive" : "") + " at temperature " + std::to_string(temperature));
            LlamaEngineOptions o = plain;
            o.draft_model_path = s_dir + "/" + draft;
            o.draft_p_min = 0;  // A random model is never sure: guess anyway.
            o.draft_max = 5;
            o.draft_adaptive = adaptive;
            std::vector<GenerateResult> got;
            replies(o, temperature, got);
            ASSERT_EQ(got.size(), expected.size());
            int guessed = 0, kept = 0;
            for (size_t k = 0; k < got.size(); ++k) {
                EXPECT_EQ(got[k].text, expected[k].text) << "reply " << k;
                EXPECT_EQ(got[k].predicted_tokens, expected[k].predicted_tokens) << "reply " << k;
                EXPECT_EQ(got[k].finish, expected[k].finish) << "reply " << k;
                EXPECT_EQ(got[k].stop_word, expected[k].stop_word) << "reply " << k;
                guessed += got[k].draft_tokens;
                kept += got[k].accepted_tokens;
            }
            if (!adaptive) {
                EXPECT_GT(guessed, 20);
            }
            // The model as its own draft is right every time it is greedy.
            if (temperature == 0.0 && std::string(draft) == "tiny.gguf") {
                EXPECT_EQ(kept, guessed);
            }
            if (std::string(draft) == "tiny-seed7.gguf" && guessed > 0) {
                EXPECT_LT(kept, guessed / 2);
            }
        }
    }
}

// A draft that guesses every token: each step keeps all its guesses, so a 40-token reply takes
// a few batches; and the same reply as without it.
TEST_F(LlamaEngineTest, ADraftThatKnowsTheModelHasEveryGuessTaken) {
    LlamaEngineOptions o = options();
    o.cache_dir.clear();
    o.model_path = s_dir + "/zero.gguf";
    auto req = request("zero", {{"user", "Tell me about the sea."}}, 40);
    req.sampling.temperature = 0;
    std::string plain;
    {
        LlamaEngine e(o);
        auto r = e.generate(req);
        ASSERT_TRUE(r) << r.error().message;
        plain = r->text;
    }
    o.draft_model_path = s_dir + "/zero-1layer.gguf";
    o.draft_max = 8;  // Default draft_p_min: this draft is sure of itself.
    o.draft_adaptive = false;
    LlamaEngine e(o);
    auto r = e.generate(req);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->text, plain);
    EXPECT_EQ(r->predicted_tokens, 40);
    EXPECT_EQ(r->accepted_tokens, r->draft_tokens);
    EXPECT_EQ(r->draft_tokens, 35);  // Five steps of a token and 8 guesses (the last: 3).
    EXPECT_EQ(e.status().draft, "zero-1layer.gguf");
    EXPECT_EQ(e.status().draft_detail, "");
}

// A draft of another vocabulary is refused at load with the reason; the model answers without it.
// So does a draft file that is not a model.
TEST_F(LlamaEngineTest, ADraftOfAnotherVocabularyIsRefusedAndTheModelStillAnswers) {
    LlamaEngineOptions o = options();
    o.cache_dir.clear();
    o.draft_model_path = s_dir + "/tiny-qwen.gguf";
    o.draft_p_min = 0;
    {
        LlamaEngine e(o);
        e.wait_loaded();
        const auto st = e.status();
        EXPECT_EQ(st.state, "ready");
        EXPECT_EQ(st.draft, "tiny-qwen.gguf");
        EXPECT_NE(st.draft_detail.find("does not fit tiny.gguf"), std::string::npos) << st.draft_detail;
        EXPECT_NE(st.draft_detail.find("token"), std::string::npos) << st.draft_detail;
        auto r = e.generate(request("q", {{"user", "Hallo"}}));
        ASSERT_TRUE(r) << r.error().message;
        EXPECT_GT(r->predicted_tokens, 0);
        EXPECT_EQ(r->draft_tokens, 0);
    }
    std::filesystem::create_directories(s_dir + "/junk");
    {
        std::ofstream(s_dir + "/junk/not-a-model.gguf") << "GGUF? no.";
    }
    o.draft_model_path = s_dir + "/junk/not-a-model.gguf";
    LlamaEngine e(o);
    e.wait_loaded();
    EXPECT_EQ(e.status().state, "ready");
    EXPECT_NE(e.status().draft_detail.find("cannot load the draft model"), std::string::npos) << e.status().draft_detail;
    auto r = e.generate(request("q", {{"user", "Hallo"}}));
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_EQ(r->draft_tokens, 0);
}

// The draft's cache is kept per chat like the model's: back in a chat after another one, and
// after a restart, the draft reads only the new turn, not the whole chat again.
TEST_F(LlamaEngineTest, TheDraftsCacheIsKeptPerChatAndAcrossARestart) {
    LlamaEngineOptions o = options();
    o.cache_dir = s_dir + "/spec-cache";
    o.draft_model_path = s_dir + "/tiny.gguf";  // Greedy: it guesses every token, and keeps up.
    o.draft_p_min = 0;
    o.draft_adaptive = false;
    auto request = [](const std::string& key, const std::vector<ChatMessage>& chat, int max_tokens) {
        GenerateRequest r = LlamaEngineTest::request(key, chat, max_tokens);
        r.sampling.temperature = 0;
        r.sampling.repeat_penalty = 1.0;
        return r;
    };
    std::vector<ChatMessage> a = {{"system", "You are Lena, a painter from Hamburg who loves the sea and old boats."},
                                  {"user", "Guten Morgen! Erzähl mir von deinem Atelier am Hafen."}};
    std::vector<ChatMessage> b = {{"user", "Something else entirely, in another chat."}};
    auto next_turn = [](std::vector<ChatMessage>& chat, const GenerateResult& r, const std::string& user) {
        chat.push_back({"assistant", r.text});
        chat.push_back({"user", user});
    };
    {
        LlamaEngine e(o);
        auto a1 = e.generate(request("A", a, 24));
        ASSERT_TRUE(a1) << a1.error().message;
        EXPECT_GT(a1->draft_evaluated, a1->prompt_tokens);  // The first turn: the draft reads it all.
        ASSERT_TRUE(e.generate(request("B", b, 24)));
        next_turn(a, *a1, "Und dann?");
        auto a2 = e.generate(request("A", a, 24));
        ASSERT_TRUE(a2) << a2.error().message;
        EXPECT_GT(a2->cached_tokens, 30);
        // The new turn and the guesses, not the whole chat again.
        EXPECT_EQ(a2->accepted_tokens, a2->draft_tokens);
        EXPECT_LE(a2->draft_evaluated, a2->prompt_tokens + a2->draft_tokens + 8) << a2->cached_tokens;
        EXPECT_LT(a2->draft_evaluated, a2->cached_tokens);
        next_turn(a, *a2, "Schön.");
    }  // Destruction saves both states.
    EXPECT_TRUE(std::filesystem::exists(o.cache_dir));
    LlamaEngine e(o);
    auto a3 = e.generate(request("A", a, 24));
    ASSERT_TRUE(a3) << a3.error().message;
    EXPECT_GT(a3->cached_tokens, 60);
    EXPECT_LE(a3->draft_evaluated, a3->prompt_tokens + a3->draft_tokens + 8) << a3->cached_tokens;
    EXPECT_LT(a3->draft_evaluated, a3->cached_tokens);
}

// Sends `first`, and once its first piece of text is out, `others` at once (each from its own
// thread, as the server's connections do): `first` hands out no more text until the engine
// reports them all queued, so they arrive while it is generating.
std::vector<Result<GenerateResult>> at_once(LlamaEngine& e, GenerateRequest first, std::vector<GenerateRequest>& others) {
    std::atomic<bool> started{false};
    bool waited = false;
    const auto queued = static_cast<int>(others.size());
    first.on_text = [&](std::string_view) {
        if (!waited) {
            waited = true;
            started = true;
            const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
            while (e.status().queued < queued && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
        }
        return true;
    };
    std::vector<Result<GenerateResult>> out(others.size() + 1, fail(ErrorCode::Internal, "not run"));
    std::thread t0([&] { out[0] = e.generate(first); });
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!started && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
    std::vector<std::thread> threads;
    for (size_t k = 0; k < others.size(); ++k) threads.emplace_back([&, k] { out[k + 1] = e.generate(others[k]); });
    t0.join();
    for (auto& t : threads) t.join();
    return out;
}

// Requests of other chats that arrive while a reply is generating join its batch: each step
// decodes one token of each, and every reply is what it is alone (each has its own sequence and
// sampler). Greedy, because a random model's next-token probabilities are nearly flat: the last
// bits of a sum, which change when other chats' cells lie between a chat's own, would change
// which of them a random draw lands on. One whose prompt and reply would not fit beside the
// others waits its turn; so does background work (a summary), which never slows a person's turn.
TEST_F(LlamaEngineTest, RepliesOfChatsRequestedAtOnceAreDecodedTogetherAndAreWhatTheyAreAlone) {
    LlamaEngineOptions o = options(512);
    o.cache_dir.clear();
    o.threads = 1;  // The thread tuner's probes on fewer threads change a sum's last bits too.
    auto make = [&](const std::string& key, const std::string& user, int max_tokens) {
        auto r = request(key, {{"user", user}}, max_tokens);
        r.sampling.temperature = 0;
        r.sampling.repeat_penalty = 1.0;
        return r;
    };
    const std::vector<GenerateRequest> reqs = {
        make("a", "Tell me a story about the sea.", 40),
        make("b", "Wie war dein Tag?", 40),
        make("c", "What do you paint?", 480),  // Its prompt and reply fill most of the context.
        make("d", "Summarize.", 30),
    };
    std::vector<GenerateResult> alone;
    {
        LlamaEngine e(o);
        for (const auto& r : reqs) {
            auto got = e.generate(r);
            ASSERT_TRUE(got) << got.error().message;
            alone.push_back(*got);
        }
    }
    ASSERT_GE(alone[0].predicted_tokens, 10);  // Long enough to be joined.
    LlamaEngine e(o);
    e.wait_loaded();
    EXPECT_EQ(e.status().parallel, 4);
    std::vector<GenerateRequest> others = {reqs[1], reqs[2], reqs[3]};
    others[2].priority = Priority::Background;
    auto got = at_once(e, reqs[0], others);
    for (size_t k = 0; k < got.size(); ++k) {
        SCOPED_TRACE("reply " + std::to_string(k));
        ASSERT_TRUE(got[k]) << got[k].error().message;
        EXPECT_EQ(got[k]->text, alone[k].text);
        EXPECT_EQ(got[k]->predicted_tokens, alone[k].predicted_tokens);
        EXPECT_EQ(got[k]->finish, alone[k].finish);
    }
    EXPECT_GT(got[0]->batched_tokens, 0);
    EXPECT_GT(got[1]->batched_tokens, 0);
    EXPECT_EQ(got[2]->batched_tokens, 0);  // No room beside the others: after them.
    EXPECT_EQ(got[3]->batched_tokens, 0);  // Background work is not batched with a turn.
    EXPECT_EQ(alone[0].batched_tokens, 0);
    EXPECT_EQ(e.status().decoding, 0);
    EXPECT_EQ(e.status().queued, 0);
}

// A chat whose reply was decoded beside another keeps its state: its next turn reads only what is
// new, from memory, and after a restart from disk (written when the engine is idle or stops).
TEST_F(LlamaEngineTest, AChatDecodedBesideAnotherKeepsItsStateInMemoryAndOnDisk) {
    LlamaEngineOptions o = options();
    o.cache_dir = s_dir + "/cache-side";
    std::vector<ChatMessage> y = {{"system", "You are Mia."}, {"user", "Hi Mia, how was your day?"}};
    std::vector<ChatMessage> z = {{"system", "You are Lena."}, {"user", "Guten Abend!"}};
    GenerateResult y1, z1;
    {
        LlamaEngine e(o);
        std::vector<GenerateRequest> side = {request("side-y", y, 24)};
        auto got = at_once(e, request("side-x", {{"user", "Talk to me."}}, 40), side);
        ASSERT_TRUE(got[1]) << got[1].error().message;
        y1 = *got[1];
        ASSERT_GT(y1.batched_tokens, 0);
        // Its next turn, beside another chat's again: its reply, which does not tokenize back to
        // the tokens it was generated as, is not read again either.
        y.push_back({"assistant", y1.text});
        y.push_back({"user", "Nice."});
        side = {request("side-y", y, 8)};
        got = at_once(e, request("side-x", {{"user", "Talk to me, please."}}, 40), side);
        ASSERT_TRUE(got[1]) << got[1].error().message;
        EXPECT_GT(got[1]->batched_tokens, 0);
        EXPECT_GE(got[1]->cached_tokens, y1.prompt_tokens + y1.predicted_tokens - 1);
        EXPECT_LE(got[1]->prompt_tokens, e.count_tokens("Nice.") + 12);

        side = {request("side-z", z, 24)};
        got = at_once(e, request("side-x", {{"user", "Talk to me again."}}, 40), side);
        ASSERT_TRUE(got[1]) << got[1].error().message;
        z1 = *got[1];
        ASSERT_GT(z1.batched_tokens, 0);
    }  // Stopping writes side-z's state, which only the memory cache held.
    LlamaEngine e(o);
    z.push_back({"assistant", z1.text});
    z.push_back({"user", "Wie geht's?"});
    auto z2 = e.generate(request("side-z", z, 8));
    ASSERT_TRUE(z2) << z2.error().message;
    EXPECT_GE(z2->cached_tokens, z1.prompt_tokens);
}

// With no memory cache to keep it, a side's state is written to disk as it leaves (the scratch
// sequence), and the chat resumes from it after a restart.
TEST_F(LlamaEngineTest, ASideStateTheMemoryCacheCannotKeepIsWrittenAsItLeaves) {
    LlamaEngineOptions o = options();
    o.cache_dir = s_dir + "/cache-side-evicted";
    o.hot_cache_bytes = 1;
    std::vector<ChatMessage> w = {{"system", "You are Mia."}, {"user", "Erzähl mir vom Hafen."}};
    GenerateResult w1;
    {
        LlamaEngine e(o);
        std::vector<GenerateRequest> side = {request("evicted-w", w, 16)};
        auto got = at_once(e, request("evicted-x", {{"user", "Talk to me."}}, 40), side);
        ASSERT_TRUE(got[0] && got[1]);
        w1 = *got[1];
        ASSERT_GT(w1.batched_tokens, 0);
        EXPECT_TRUE(std::filesystem::exists(o.cache_dir));
    }
    LlamaEngine e(o);
    w.push_back({"assistant", w1.text});
    w.push_back({"user", "Und dann?"});
    auto w2 = e.generate(request("evicted-w", w, 8));
    ASSERT_TRUE(w2) << w2.error().message;
    EXPECT_GE(w2->cached_tokens, w1.prompt_tokens);
}

// Cancelling one of the replies decoding together (its person pressed stop) ends it within a
// token; the others go on to their own end. (Not to the same last bits: the cancelled reply's
// cells are freed and the others' next tokens fill them, so their cells no longer lie in order.)
TEST_F(LlamaEngineTest, CancellingOneOfTheRepliesDecodingTogetherStopsOnlyIt) {
    LlamaEngineOptions o = options();
    o.cache_dir.clear();
    o.threads = 1;  // See above.
    auto second = request("cancel-b", {{"user", "Wie war dein Tag?"}}, 200);
    second.cancel = std::make_shared<std::atomic<bool>>(false);
    int pieces = 0;
    second.on_text = [&](std::string_view) {
        if (++pieces == 3) second.cancel->store(true);
        return true;
    };
    auto first = request("cancel-a", {{"user", "Tell me a story."}}, 40);
    first.sampling.temperature = 0;  // See above.
    first.sampling.repeat_penalty = 1.0;
    GenerateResult alone;
    {
        LlamaEngine e(o);
        auto r = e.generate(first);
        ASSERT_TRUE(r);
        alone = *r;
    }
    LlamaEngine e(o);
    std::vector<GenerateRequest> others = {second};
    auto got = at_once(e, first, others);
    ASSERT_TRUE(got[0] && got[1]);
    EXPECT_EQ(got[1]->finish, FinishReason::Cancelled);
    EXPECT_LE(got[1]->predicted_tokens, 4 + 3);
    EXPECT_GT(got[1]->batched_tokens, 0);
    EXPECT_EQ(got[0]->finish, alone.finish);
    EXPECT_EQ(got[0]->predicted_tokens, alone.predicted_tokens);
    EXPECT_GT(got[0]->batched_tokens, 0);
    EXPECT_LT(got[0]->batched_tokens, alone.predicted_tokens - 20);  // Alone once the other stopped.
}

TEST(Templates, FallbacksFormatAsTheirFamiliesDo) {
    const std::vector<ChatMessage> m = {{"system", "S"}, {"user", "U"}};
    EXPECT_NE(apply_template("chatml", m, true)->find("<|im_start|>assistant\n"), std::string::npos);
    EXPECT_NE(apply_template("llama3", m, true)->find("<|start_header_id|>assistant"), std::string::npos);
    EXPECT_NE(apply_template("mistral", m, true)->find("[INST]"), std::string::npos);
    EXPECT_EQ(*apply_template("alpaca", m, true), "S\n\n### Instruction:\nU\n\n### Response:\n");
    EXPECT_FALSE(apply_template("no-such-template", m, true));
}

}  // namespace
}  // namespace mc::llm

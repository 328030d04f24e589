// The embedded speech engine against random-weight Qwen3-TTS and Pocket TTS pairs written here.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>

#include "llm/test_model.hpp"
#include "voice/embedded_tts.hpp"
#include "voice/tts_test_model.hpp"

namespace mc::voice {
namespace {

namespace fs = std::filesystem;

// One thread: the tiny models' graphs are many small ops, where extra threads only wait.
constexpr int kThreads = 1;

// A 1 s voice sample: a 220 Hz tone with some noise, 24 kHz 16-bit mono.
void write_clip(const std::string& path) {
    const int rate = 24000, n = rate;
    std::string data;
    uint32_t noise = 12345;
    for (int i = 0; i < n; ++i) {
        noise = noise * 1664525u + 1013904223u;
        const double v = 8000.0 * std::sin(2.0 * M_PI * 220.0 * i / rate) + static_cast<double>(noise >> 22) - 512.0;
        const int16_t s = static_cast<int16_t>(v);
        data.append(reinterpret_cast<const char*>(&s), 2);
    }
    auto u32 = [](uint32_t v) { return std::string(reinterpret_cast<const char*>(&v), 4); };
    auto u16 = [](uint16_t v) { return std::string(reinterpret_cast<const char*>(&v), 2); };
    std::ofstream f(path, std::ios::binary);
    f << "RIFF" << u32(36 + static_cast<uint32_t>(data.size())) << "WAVE" << "fmt " << u32(16) << u16(1) << u16(1)
      << u32(rate) << u32(rate * 2) << u16(2) << u16(16) << "data" << u32(static_cast<uint32_t>(data.size())) << data;
}

class EmbeddedTtsTest : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        s_dir = (fs::temp_directory_path() / ("mc-voice-test-" + std::to_string(getpid()))).string();
        fs::create_directories(s_dir);
        for (const char* kind : {"qwen3tts", "pockettts"}) {
            TtsTestModelOptions o{kind, s_dir + "/" + kind + ".gguf", s_dir + "/" + kind + "-mmproj.gguf", "tiny", 42};
            auto r = write_tts_test_model(o);
            ASSERT_TRUE(r) << r.error().message;
        }
        write_clip(s_dir + "/clip.wav");
        s_qwen = std::make_unique<EmbeddedTts>(s_dir + "/qwen3tts.gguf", s_dir + "/qwen3tts-mmproj.gguf", kThreads);
        s_pocket = std::make_unique<EmbeddedTts>(s_dir + "/pockettts.gguf", s_dir + "/pockettts-mmproj.gguf", kThreads);
    }
    static void TearDownTestSuite() {
        s_qwen.reset();
        s_pocket.reset();
        std::error_code ec;
        fs::remove_all(s_dir, ec);
    }
    static int cap_samples(const std::string& text) { return EmbeddedTts::max_frames(text) * 1920; }

    static inline std::string s_dir;
    static inline std::unique_ptr<EmbeddedTts> s_qwen, s_pocket;
};

TEST_F(EmbeddedTtsTest, WritesSmallPairs) {
    EXPECT_LT(fs::file_size(s_dir + "/qwen3tts.gguf") + fs::file_size(s_dir + "/qwen3tts-mmproj.gguf"), 20u << 20);
    EXPECT_LT(fs::file_size(s_dir + "/pockettts.gguf") + fs::file_size(s_dir + "/pockettts-mmproj.gguf"), 5u << 20);
    TtsTestModelOptions bad{"pockettts", s_dir + "/x.gguf", s_dir + "/x-mmproj.gguf", "1.7b", 1};
    auto r = write_tts_test_model(bad);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().field, "size");
}

TEST_F(EmbeddedTtsTest, HealthOkBeforeLoading) {
    EXPECT_EQ(s_qwen->name(), "embedded");
    EXPECT_EQ(s_pocket->health().state, "ok");
}

TEST_F(EmbeddedTtsTest, Qwen3SpeaksGermanAndEnglish) {
    for (const char* lang : {"de", "en"}) {
        TtsRequest r;
        r.text = std::string(lang) == "de" ? "Hallo du." : "Hello you.";
        r.language = lang;
        auto a = s_qwen->synthesize(r);
        ASSERT_TRUE(a) << lang << ": " << a.error().message;
        EXPECT_EQ(a->sample_rate, 24000);
        EXPECT_GT(a->samples.size(), 0u);
        EXPECT_LE(static_cast<int>(a->samples.size()), cap_samples(r.text));
    }
    EXPECT_EQ(s_qwen->health().state, "ok");
}

TEST_F(EmbeddedTtsTest, Qwen3ClonesASpeakerAndSpeaksEachSentence) {
    TtsRequest r;
    r.text = "Ja. Gut.";
    r.language = "de";
    r.speaker_clip = s_dir + "/clip.wav";
    auto a = s_qwen->synthesize(r);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->sample_rate, 24000);
    EXPECT_GT(a->samples.size(), 0u);
    // Two sentences, each with its own cap.
    EXPECT_LE(static_cast<int>(a->samples.size()), cap_samples("Ja.") + cap_samples("Gut."));
}

// Instant cloning: a character's sample is read once and kept for every sentence after it; a new
// sample (the file replaced) is read again.
TEST_F(EmbeddedTtsTest, TheVoiceSampleIsReadOncePerSampleNotPerSentence) {
    const std::string clip = s_dir + "/clip-cache.wav";
    fs::copy_file(s_dir + "/clip.wav", clip, fs::copy_options::overwrite_existing);
    TtsRequest r;
    r.text = "Ja.";
    r.language = "de";
    r.speaker_clip = clip;
    const int before = s_qwen->speaker_loads();
    for (int i = 0; i < 3; ++i) ASSERT_TRUE(s_qwen->synthesize(r));
    EXPECT_EQ(s_qwen->speaker_loads(), before + 1);
    // Another sample: a different file, then this one rewritten with other content.
    std::ofstream(clip, std::ios::binary | std::ios::app) << std::string(4800, '\0');
    ASSERT_TRUE(s_qwen->synthesize(r));
    EXPECT_EQ(s_qwen->speaker_loads(), before + 2);
    ASSERT_TRUE(s_qwen->synthesize(r));
    EXPECT_EQ(s_qwen->speaker_loads(), before + 2);
}

TEST_F(EmbeddedTtsTest, PocketSpeaksWithAVoiceSample) {
    TtsRequest r;
    r.text = "Hello there.";
    r.speaker_clip = s_dir + "/clip.wav";
    auto a = s_pocket->synthesize(r);
    ASSERT_TRUE(a) << a.error().message;
    EXPECT_EQ(a->sample_rate, 24000);
    EXPECT_GT(a->samples.size(), 0u);
    EXPECT_LE(static_cast<int>(a->samples.size()), cap_samples(r.text));
}

TEST_F(EmbeddedTtsTest, PocketWithoutVoiceSampleIsInvalid) {
    TtsRequest r;
    r.text = "Hello there.";
    auto a = s_pocket->synthesize(r);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, ErrorCode::InvalidInput);
    EXPECT_NE(a.error().message.find("voice sample"), std::string::npos) << a.error().message;
}

TEST_F(EmbeddedTtsTest, UnknownLanguageIsInvalid) {
    TtsRequest r;
    r.text = "Hallo.";
    r.language = "xx";
    auto a = s_qwen->synthesize(r);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, ErrorCode::InvalidInput);
    EXPECT_EQ(a.error().field, "language");
    EXPECT_NE(a.error().message.find("xx"), std::string::npos);
}

TEST_F(EmbeddedTtsTest, EmptyTextIsInvalid) {
    TtsRequest r;
    r.text = "  \n ";
    auto a = s_qwen->synthesize(r);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().field, "text");
}

TEST_F(EmbeddedTtsTest, MissingModelIsUnavailable) {
    EmbeddedTts e(s_dir + "/nope.gguf", s_dir + "/qwen3tts-mmproj.gguf", kThreads);
    const TtsHealth h = e.health();
    EXPECT_EQ(h.state, "unavailable");
    EXPECT_NE(h.detail.find("nope.gguf"), std::string::npos) << h.detail;
    EXPECT_NE(h.detail.find("media.tts_model_file"), std::string::npos) << h.detail;
    TtsRequest r;
    r.text = "Hallo.";
    auto a = e.synthesize(r);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, ErrorCode::Unavailable);

    EmbeddedTts none("", "", kThreads);
    EXPECT_EQ(none.health().state, "unavailable");
}

TEST_F(EmbeddedTtsTest, LlamaModelIsUnavailableNotACrash) {
    llm::TestModelOptions t;
    t.out = s_dir + "/llama.gguf";
    ASSERT_TRUE(llm::write_test_model(t));
    EmbeddedTts e(t.out, s_dir + "/qwen3tts-mmproj.gguf", kThreads);
    const TtsHealth h = e.health();
    EXPECT_EQ(h.state, "unavailable");
    EXPECT_NE(h.detail.find("not a TTS model (architecture llama)"), std::string::npos) << h.detail;
    TtsRequest r;
    r.text = "Hallo.";
    r.language = "de";
    auto a = e.synthesize(r);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, ErrorCode::Unavailable);

    // The right backbone with the other family's mmproj.
    EmbeddedTts mixed(s_dir + "/qwen3tts.gguf", s_dir + "/pockettts-mmproj.gguf", kThreads);
    EXPECT_EQ(mixed.health().state, "unavailable");
    EXPECT_FALSE(mixed.synthesize(r));
}

TEST_F(EmbeddedTtsTest, CancelStopsEarly) {
    TtsRequest r;
    r.text = "Das ist ein langer Satz, der lange dauern würde, wenn niemand ihn abbricht.";
    r.language = "de";
    r.cancel = std::make_shared<std::atomic<bool>>(true);
    const auto started = std::chrono::steady_clock::now();
    auto a = s_qwen->synthesize(r);
    ASSERT_FALSE(a);
    EXPECT_EQ(a.error().code, ErrorCode::Unavailable);
    EXPECT_NE(a.error().message.find("cancel"), std::string::npos);

    // Set while generating: stops well before the cap.
    r.cancel = std::make_shared<std::atomic<bool>>(false);
    std::thread stopper([c = r.cancel] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        c->store(true);
    });
    auto b = s_qwen->synthesize(r);
    stopper.join();
    ASSERT_FALSE(b);
    EXPECT_EQ(b.error().code, ErrorCode::Unavailable);
    (void)started;
}

}  // namespace
}  // namespace mc::voice

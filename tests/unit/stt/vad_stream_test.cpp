// The voice call's ears: the segmenter's rules on known probabilities (when speech counts, when an
// utterance ends, the cut for someone who never pauses), and whisper.cpp's streaming Silero VAD on
// espeak-ng speech, window by window.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>

#include "../../stt_audio.hpp"
#include "stt/vad_stream.hpp"

namespace mc::stt {
namespace {

struct Fed {
    std::vector<VadEvent> events;
};

// Feeds `ms` of windows with probability `p`; the samples carry their window number.
void feed(UtteranceSegmenter& s, Fed& f, int ms, float p, float level = 0.1f) {
    std::vector<float> w(kVadWindow, level);
    for (int i = 0; i < ms / 32; ++i) {
        for (auto& e : s.push(w.data(), p)) f.events.push_back(std::move(e));
    }
}

TEST(UtteranceSegmenter, SpeechBetweenSilencesIsOneUtteranceWithItsTimesAndAudio) {
    SegmenterOptions o;  // 160 ms to count, 600 ms of silence to end, 250 ms padding.
    UtteranceSegmenter s(o);
    Fed f;
    feed(s, f, 992, 0.05f);
    EXPECT_TRUE(f.events.empty());
    feed(s, f, 1504, 0.9f);
    ASSERT_EQ(f.events.size(), 1u);
    EXPECT_EQ(f.events[0].kind, VadEvent::Kind::SpeechStart);
    EXPECT_EQ(f.events[0].at_ms, 992);  // Where the speech began, not where it was confirmed.
    EXPECT_TRUE(s.in_speech());
    feed(s, f, 576, 0.1f);  // 18 windows: under 600 ms of silence.
    EXPECT_EQ(f.events.size(), 1u);
    feed(s, f, 32, 0.1f);   // The 19th window makes 608 ms.
    ASSERT_EQ(f.events.size(), 2u);
    const VadEvent& end = f.events[1];
    EXPECT_EQ(end.kind, VadEvent::Kind::UtteranceEnd);
    EXPECT_FALSE(end.cut);
    EXPECT_EQ(end.at_ms, 992 + 1504);  // The end of the speech, not of the silence after it.
    // The speech, 256 ms of padding before it (8 windows) and 256 ms after it.
    EXPECT_EQ(end.samples.size(), static_cast<size_t>((1504 / 32 + 8 + 8) * kVadWindow));
    EXPECT_EQ(end.duration_ms, static_cast<int64_t>(end.samples.size()) * 1000 / 16000);
    EXPECT_FALSE(s.in_speech());
}

TEST(UtteranceSegmenter, ShortPausesKeepTheUtteranceAndBlipsAreNotSpeech) {
    UtteranceSegmenter s(SegmenterOptions{});
    Fed f;
    feed(s, f, 96, 0.9f);  // A click: 3 windows, under 160 ms.
    feed(s, f, 640, 0.0f);
    EXPECT_TRUE(f.events.empty());
    feed(s, f, 640, 0.9f);
    feed(s, f, 320, 0.0f);  // A breath between words.
    feed(s, f, 640, 0.9f);
    ASSERT_EQ(f.events.size(), 1u);
    feed(s, f, 640, 0.0f);
    ASSERT_EQ(f.events.size(), 2u);
    EXPECT_EQ(f.events[1].at_ms, 736 + 640 + 320 + 640);
}

TEST(UtteranceSegmenter, SomeoneWhoNeverPausesIsCutAtTheLimitAndHeardAgain) {
    SegmenterOptions o;
    o.max_utterance_ms = 3000;
    UtteranceSegmenter s(o);
    Fed f;
    feed(s, f, 6400, 0.9f);
    ASSERT_GE(f.events.size(), 4u);
    EXPECT_EQ(f.events[0].kind, VadEvent::Kind::SpeechStart);
    EXPECT_EQ(f.events[1].kind, VadEvent::Kind::UtteranceEnd);
    EXPECT_TRUE(f.events[1].cut);
    EXPECT_LE(f.events[1].duration_ms, 3000 + 32);
    EXPECT_GE(f.events[1].duration_ms, 3000 - 32);
    EXPECT_EQ(f.events[2].kind, VadEvent::Kind::SpeechStart);  // Still speaking: a new utterance.
    EXPECT_TRUE(s.in_speech());
}

TEST(VadModel, SileroFollowsSpeechWindowByWindowAndLoudnessWorksWithoutAModel) {
    const auto clip = test::spoken_clip("Hello there, how are you today?", "en", 1.0, 1.0);
    if (clip.wav.empty()) GTEST_SKIP() << "espeak-ng is not installed";
    // espeak-ng speaks at 22050 Hz: take every sample at the nearest 16 kHz position.
    std::vector<float> pcm;
    const size_t n = (clip.wav.size() - 44) / 2;
    for (double t = 0; t < static_cast<double>(n) / clip.rate; t += 1.0 / 16000) {
        const size_t i = static_cast<size_t>(t * clip.rate);
        const auto v = static_cast<int16_t>(static_cast<uint8_t>(clip.wav[44 + 2 * i]) | static_cast<uint8_t>(clip.wav[45 + 2 * i]) << 8);
        pcm.push_back(static_cast<float>(v) / 32768.0f);
    }
    for (const std::string& path : {std::string(MYCANDY_VAD_MODEL), std::string()}) {
        auto vad = VadModel::open(path, 1);
        ASSERT_TRUE(vad) << vad.error().message;
        EXPECT_EQ((*vad)->is_model(), !path.empty());
        UtteranceSegmenter seg(SegmenterOptions{});
        Fed f;
        for (size_t at = 0; at + kVadWindow <= pcm.size(); at += kVadWindow) {
            const float p = (*vad)->probability(pcm.data() + at);
            for (auto& e : seg.push(pcm.data() + at, p)) f.events.push_back(std::move(e));
        }
        ASSERT_EQ(f.events.size(), 2u) << (path.empty() ? "loudness" : "silero");
        EXPECT_NEAR(f.events[0].at_ms / 1000.0, clip.speech_start, 0.1);
        EXPECT_NEAR(f.events[1].at_ms / 1000.0, clip.speech_end, 0.35);
    }
    // A model opened where freed memory held garbage starts from a clean state: whisper.cpp leaves
    // the LSTM state of a new VAD context uninitialized, and a NaN there made a call deaf for good.
    for (int round = 0; round < 8; ++round) {
        for (size_t size : {512u, 1024u, 2048u, 4096u, 8192u, 65536u}) {
            std::vector<void*> junk;
            for (int i = 0; i < 8; ++i) {
                void* p = std::malloc(size);
                std::memset(p, 0xFF, size);  // 0xFFFFFFFF is a NaN as a float.
                junk.push_back(p);
            }
            for (void* p : junk) std::free(p);
        }
        auto vad = VadModel::open(MYCANDY_VAD_MODEL, 1);
        ASSERT_TRUE(vad);
        UtteranceSegmenter seg(SegmenterOptions{});
        size_t events = 0;
        for (size_t at = 0; at + kVadWindow <= pcm.size(); at += kVadWindow) events += seg.push(pcm.data() + at, (*vad)->probability(pcm.data() + at)).size();
        EXPECT_EQ(events, 2u) << "round " << round;
    }
    auto missing = VadModel::open("/nonexistent/ggml-silero.bin", 1);
    ASSERT_FALSE(missing);
    EXPECT_NE(missing.error().message.find("stt.vad_model_path"), std::string::npos);
}

}  // namespace
}  // namespace mc::stt

// voice/espeak_tts: the real espeak-ng program (installed by scripts/setup.sh) produces real WAV.
#include <gtest/gtest.h>

#include "voice/espeak_tts.hpp"

namespace mc::voice {
namespace {

Result<Audio> say(EspeakTts& tts, const std::string& text, const std::string& language = "en", const std::string& voice = "",
                  double speed = 1.0) {
    TtsRequest r;
    r.text = text;
    r.language = language;
    r.voice = voice;
    r.speed = speed;
    return tts.synthesize(r);
}

TEST(EspeakTts, SpeaksGermanAndEnglishWithDurationFollowingTheText) {
    EspeakTts tts;
    ASSERT_EQ(tts.health().state, "ok") << tts.health().detail;
    auto short_de = say(tts, "Hallo, wie geht es dir?", "de");
    ASSERT_TRUE(short_de) << short_de.error().message;
    EXPECT_EQ(short_de->sample_rate, 22050);
    EXPECT_GT(short_de->seconds(), 0.7);
    EXPECT_LT(short_de->seconds(), 5.0);
    auto long_de = say(tts, "Hallo, wie geht es dir? Ich habe heute den ganzen Tag am Hafen gemalt, und morgen fahre ich nach Berlin.", "de");
    ASSERT_TRUE(long_de);
    EXPECT_GT(long_de->seconds(), 2.5 * short_de->seconds());
    // Not silence.
    int loud = 0;
    for (int16_t s : long_de->samples) loud += (s > 2000 || s < -2000);
    EXPECT_GT(loud, 1000);

    auto en = say(tts, "Good morning, how are you today?", "en", "en-us+f3");
    ASSERT_TRUE(en) << en.error().message;
    auto fast = say(tts, "Good morning, how are you today?", "en", "en-us+f3", 2.0);
    ASSERT_TRUE(fast);
    EXPECT_LT(fast->seconds(), 0.75 * en->seconds());
}

TEST(EspeakTts, RefusesEmptyTextAndUnknownVoicesByName) {
    EspeakTts tts;
    for (const char* empty : {"", "   ", "\n\t"}) {
        auto r = say(tts, empty);
        ASSERT_FALSE(r);
        EXPECT_EQ(r.error().code, ErrorCode::InvalidInput);
        EXPECT_EQ(r.error().field, "text");
    }
    for (const char* voice : {"klingon", "de+nosuchvariant", "../../etc/passwd", "-v", "de --stdout /tmp/x"}) {
        auto r = say(tts, "Hallo", "de", voice);
        ASSERT_FALSE(r) << voice;
        EXPECT_EQ(r.error().code, ErrorCode::InvalidInput);
        EXPECT_EQ(r.error().field, "voice");
        EXPECT_NE(r.error().message.find(voice), std::string::npos);
    }
}

TEST(EspeakTts, TextThatLooksLikeOptionsIsSpokenNotObeyed) {
    EspeakTts tts;
    auto r = say(tts, "-v xx --stdout /tmp/mc-espeak-injected $(id) `id` ; rm -rf /");
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_GT(r->seconds(), 1.0);
}

TEST(EspeakTts, AMissingProgramIsUnavailableWithTheFix) {
    EspeakTts tts("/nonexistent/espeak-ng");
    EXPECT_EQ(tts.health().state, "unavailable");
    EXPECT_NE(tts.health().detail.find("apt-get install espeak-ng"), std::string::npos);
    auto r = say(tts, "Hello");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::Unavailable);
}

}  // namespace
}  // namespace mc::voice

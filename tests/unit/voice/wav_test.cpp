// voice/wav: what engines and speech servers send is read whatever its sample format; bad bytes
// are refused by name.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "voice/wav.hpp"

namespace mc::voice {
namespace {

std::string header(uint16_t format, uint16_t channels, uint32_t rate, uint16_t bits, uint32_t data_bytes) {
    std::string s = "RIFF";
    auto put32 = [&](uint32_t v) { for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff)); };
    auto put16 = [&](uint16_t v) { s.push_back(static_cast<char>(v & 0xff)); s.push_back(static_cast<char>(v >> 8)); };
    put32(36 + data_bytes);
    s += "WAVEfmt ";
    put32(16); put16(format); put16(channels); put32(rate); put32(rate * channels * bits / 8);
    put16(static_cast<uint16_t>(channels * bits / 8)); put16(bits);
    s += "data";
    put32(data_bytes);
    return s;
}

TEST(Wav, RoundTripsSixteenBitMono) {
    Audio a{22050, {0, 1000, -1000, 32767, -32768}};
    auto back = parse_wav(encode_wav(a));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->sample_rate, 22050);
    EXPECT_EQ(back->samples, a.samples);
    EXPECT_EQ(encode_wav(a).size(), 44u + 10u);
}

TEST(Wav, ReadsStereoFloatAndTwentyFourBitAndMixesToMono) {
    // Stereo 16-bit: (1000, 3000) -> 2000.
    std::string s = header(1, 2, 24000, 16, 4);
    int16_t lr[2] = {1000, 3000};
    s.append(reinterpret_cast<const char*>(lr), 4);
    auto st = parse_wav(s);
    ASSERT_TRUE(st);
    ASSERT_EQ(st->samples.size(), 1u);
    EXPECT_NEAR(st->samples[0], 2000, 2);

    std::string f = header(3, 1, 48000, 32, 8);
    float v[2] = {0.5f, -0.25f};
    f.append(reinterpret_cast<const char*>(v), 8);
    auto fl = parse_wav(f);
    ASSERT_TRUE(fl);
    EXPECT_EQ(fl->sample_rate, 48000);
    EXPECT_NEAR(fl->samples[0], 16384, 2);
    EXPECT_NEAR(fl->samples[1], -8192, 2);

    std::string t = header(1, 1, 16000, 24, 3);
    t += std::string("\x00\x00\xc0", 3);  // -0.5 in 24-bit.
    auto tw = parse_wav(t);
    ASSERT_TRUE(tw);
    EXPECT_NEAR(tw->samples[0], -16384, 2);
}

TEST(Wav, AcceptsStreamingHeadersWithUnknownLength) {
    // espeak-ng --stdout writes 0x7ffff000-ish sizes: the data runs to the end of the bytes.
    std::string s = header(1, 1, 22050, 16, 0x7ffff000);
    s += std::string(200, '\0');
    auto a = parse_wav(s);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->samples.size(), 100u);
}

TEST(Wav, OggOpusIsRealOpusAndMuchSmaller) {
    Audio a;
    a.sample_rate = 22050;
    for (int i = 0; i < 22050 * 2; ++i) a.samples.push_back(static_cast<int16_t>(8000 * std::sin(i * 0.07) * std::sin(i * 0.0005)));
    auto ogg = encode_ogg_opus(a);
    ASSERT_TRUE(ogg) << ogg.error().message;
    EXPECT_EQ(ogg->compare(0, 4, "OggS"), 0);
    EXPECT_NE(ogg->find("OpusHead"), std::string::npos);
    EXPECT_NE(ogg->find("OpusTags"), std::string::npos);
    EXPECT_LT(ogg->size() * 5, encode_wav(a).size());
    EXPECT_GT(ogg->size(), 1000u);
}

TEST(Wav, RefusesWhatIsNotPcmWav) {
    for (std::string bad : {std::string("hello"), std::string("<html>not audio</html>"), std::string("ID3\x04 mp3 bytes......"),
                            header(85, 1, 22050, 16, 4) + "abcd",        // MP3 in WAV.
                            header(1, 0, 22050, 16, 4) + "abcd",         // No channels.
                            header(1, 1, 22050, 12, 4) + "abcd",         // Odd bit depth.
                            std::string("RIFF\x10\0\0\0WAVEdata\x04\0\0\0abcd", 24)}) {  // Data before format.
        auto r = parse_wav(bad);
        ASSERT_FALSE(r) << bad.size();
        EXPECT_EQ(r.error().code, ErrorCode::InvalidInput);
        EXPECT_FALSE(r.error().message.empty());
    }
}

}  // namespace
}  // namespace mc::voice

#include "core/text.hpp"

#include <gtest/gtest.h>

#include "core/media_type.hpp"

namespace mc {
namespace {

TEST(Utf8, ValidatesWellFormedText) {
    EXPECT_TRUE(utf8_valid("Grüße aus Hamburg 😊"));
    EXPECT_FALSE(utf8_valid("\xC3"));              // Truncated.
    EXPECT_FALSE(utf8_valid("\xC0\xAF"));          // Overlong '/'.
    EXPECT_FALSE(utf8_valid("\xED\xA0\x80"));      // Surrogate.
    EXPECT_FALSE(utf8_valid("a\xFF" "b"));
}

TEST(Utf8, SanitizeReplacesOnlyInvalidBytes) {
    EXPECT_EQ(sanitize_utf8("Grüße"), "Grüße");
    EXPECT_EQ(sanitize_utf8("a\xFF" "b"), "a\xEF\xBF\xBD" "b");
    EXPECT_EQ(sanitize_utf8("\xC3"), "\xEF\xBF\xBD");
    EXPECT_TRUE(utf8_valid(sanitize_utf8("\xED\xA0\x80x\xC0\xAF")));
}

TEST(Utf8, CountsCodePointsNotBytes) {
    EXPECT_EQ(utf8_length("Jörg"), 4u);
    EXPECT_EQ(utf8_length("😊"), 1u);
}

TEST(RandomHex, HasTheRequestedLengthAndDiffers) {
    const auto a = random_hex(8), b = random_hex(8);
    EXPECT_EQ(a.size(), 16u);
    EXPECT_NE(a, b);
}

TEST(MediaType, DecidesByContent) {
    EXPECT_EQ(sniff_image(std::string("\x89PNG\r\n\x1a\n....", 12))->ext, "png");
    EXPECT_EQ(sniff_image("\xFF\xD8\xFF\xE0")->ext, "jpg");
    EXPECT_EQ(sniff_image(std::string("RIFF\0\0\0\0WEBPVP8 ", 16))->ext, "webp");
    EXPECT_FALSE(sniff_image("GIF89a"));
    EXPECT_FALSE(sniff_image("<svg onload=alert(1)>"));
    EXPECT_EQ(sniff_audio(std::string("RIFF\0\0\0\0WAVEfmt ", 16))->ext, "wav");
    EXPECT_EQ(sniff_audio("ID3\x03")->ext, "mp3");
    EXPECT_EQ(sniff_audio("fLaC")->ext, "flac");
    EXPECT_EQ(sniff_audio("OggS")->ext, "ogg");
    EXPECT_FALSE(sniff_audio(std::string("RIFF\0\0\0\0WEBP", 12)));
}

}  // namespace
}  // namespace mc

namespace mc {
namespace {

TEST(Utf8Prefix, CutsAtCodePointBoundaries) {
    EXPECT_EQ(utf8_prefix("Hallo", 10), "Hallo");
    EXPECT_EQ(utf8_prefix("Hallo", 3), "Hal");
    // "ä" is two bytes: a cut inside it drops it whole.
    EXPECT_EQ(utf8_prefix("aä", 2), "a");
    EXPECT_EQ(utf8_prefix("aä", 3), "aä");
    EXPECT_EQ(utf8_prefix("😀x", 3), "");
    EXPECT_TRUE(utf8_valid(utf8_prefix("Grüße aus Köln", 9)));
}

}  // namespace
}  // namespace mc

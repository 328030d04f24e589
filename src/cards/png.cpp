#include "cards/png.hpp"

#include <array>
#include <cstring>
#include <zlib.h>

namespace mc::cards {
namespace {

constexpr std::string_view kSignature{"\x89PNG\r\n\x1a\n", 8};

uint32_t be32(std::string_view s, size_t at) {
    return (uint32_t(uint8_t(s[at])) << 24) | (uint32_t(uint8_t(s[at + 1])) << 16) | (uint32_t(uint8_t(s[at + 2])) << 8) |
           uint32_t(uint8_t(s[at + 3]));
}

void put_be32(std::string& out, uint32_t v) {
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

std::string chunk(std::string_view type, std::string_view data) {
    std::string out;
    put_be32(out, static_cast<uint32_t>(data.size()));
    std::string body(type);
    body += data;
    out += body;
    put_be32(out, crc32(body));
    return out;
}

struct Chunk {
    std::string_view type;
    std::string_view data;
    std::string_view whole;  // Length, type, data and CRC.
};

// Walks the chunks; stops after IEND. Fails on any structural problem.
template <class F>
Result<void> each_chunk(std::string_view png, F&& f) {
    if (!is_png(png)) return fail(ErrorCode::InvalidInput, "not a PNG file", "file");
    if (png.size() > kMaxPngBytes) return fail(ErrorCode::TooLarge, "the PNG is larger than 32 MB", "file");
    size_t at = kSignature.size();
    bool ended = false;
    while (at < png.size() && !ended) {
        if (png.size() - at < 12) return fail(ErrorCode::InvalidInput, "the PNG is cut off (a chunk header past the end)", "file");
        const uint32_t len = be32(png, at);
        if (len > png.size() - at - 12) return fail(ErrorCode::InvalidInput, "the PNG is cut off (a chunk past the end)", "file");
        const std::string_view type = png.substr(at + 4, 4);
        const std::string_view data = png.substr(at + 8, len);
        const uint32_t crc = be32(png, at + 8 + len);
        if (crc32(png.substr(at + 4, 4 + len)) != crc) {
            return fail(ErrorCode::InvalidInput, "the PNG's " + std::string(type) + " chunk has a wrong CRC", "file");
        }
        f(Chunk{type, data, png.substr(at, 12 + len)});
        at += 12 + len;
        ended = type == "IEND";
    }
    if (!ended) return fail(ErrorCode::InvalidInput, "the PNG has no IEND chunk", "file");
    return {};
}

bool is_card_chunk(const Chunk& c) {
    if (c.type != "tEXt") return false;
    const size_t nul = c.data.find('\0');
    const std::string_view key = c.data.substr(0, nul);
    return key == "chara" || key == "ccv3";
}

}  // namespace

uint32_t crc32(std::string_view data, uint32_t crc) {
    return static_cast<uint32_t>(::crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

bool is_png(std::string_view bytes) { return bytes.substr(0, kSignature.size()) == kSignature; }

Result<std::map<std::string, std::string>> png_text_chunks(std::string_view png) {
    std::map<std::string, std::string> out;
    std::optional<Error> problem;
    auto walked = each_chunk(png, [&](const Chunk& c) {
        if (c.type != "tEXt" || problem) return;
        if (c.data.size() > kMaxCardChunkBytes) {
            problem = Error{ErrorCode::TooLarge, "a text chunk of the PNG is larger than 8 MB", "file"};
            return;
        }
        const size_t nul = c.data.find('\0');
        if (nul == std::string_view::npos) return;  // Malformed tEXt: ignored like other readers do.
        out.emplace(std::string(c.data.substr(0, nul)), std::string(c.data.substr(nul + 1)));
    });
    if (!walked) return std::unexpected(walked.error());
    if (problem) return std::unexpected(*problem);
    return out;
}

Result<std::string> png_strip_card_chunks(std::string_view png) { return png_with_text_chunks(png, {}); }

Result<std::string> png_with_text_chunks(std::string_view png, const std::map<std::string, std::string>& chunks) {
    std::string out(kSignature);
    out.reserve(png.size() + 64);
    auto walked = each_chunk(png, [&](const Chunk& c) {
        if (is_card_chunk(c)) return;
        if (c.type == "IEND") {
            for (const auto& [key, text] : chunks) out += chunk("tEXt", key + std::string(1, '\0') + text);
        }
        out += c.whole;
    });
    if (!walked) return std::unexpected(walked.error());
    return out;
}

std::string placeholder_png() {
    constexpr uint32_t kSize = 256;
    std::string raw;
    raw.reserve((kSize * 3 + 1) * kSize);
    for (uint32_t y = 0; y < kSize; ++y) {
        raw.push_back('\0');
        for (uint32_t x = 0; x < kSize; ++x) {
            raw.push_back(static_cast<char>(0xE8));
            raw.push_back(static_cast<char>(0x9A + (y >> 3)));
            raw.push_back(static_cast<char>(0xC0));
        }
    }
    uLongf zlen = compressBound(static_cast<uLong>(raw.size()));
    std::string z(zlen, '\0');
    compress2(reinterpret_cast<Bytef*>(z.data()), &zlen, reinterpret_cast<const Bytef*>(raw.data()),
              static_cast<uLong>(raw.size()), 9);
    z.resize(zlen);
    std::string ihdr;
    put_be32(ihdr, kSize);
    put_be32(ihdr, kSize);
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);
    return std::string(kSignature) + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", "");
}

std::string base64_encode(std::string_view bytes) {
    static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    out.reserve((bytes.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const uint32_t v = (uint32_t(uint8_t(bytes[i])) << 16) | (uint32_t(uint8_t(bytes[i + 1])) << 8) | uint8_t(bytes[i + 2]);
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += kAlphabet[(v >> 6) & 63];
        out += kAlphabet[v & 63];
    }
    if (i < bytes.size()) {
        uint32_t v = uint32_t(uint8_t(bytes[i])) << 16;
        if (i + 1 < bytes.size()) v |= uint32_t(uint8_t(bytes[i + 1])) << 8;
        out += kAlphabet[(v >> 18) & 63];
        out += kAlphabet[(v >> 12) & 63];
        out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
    std::array<int8_t, 256> value{};
    value.fill(-1);
    const std::string_view alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < alphabet.size(); ++i) value[uint8_t(alphabet[i])] = static_cast<int8_t>(i);
    std::string out;
    out.reserve(text.size() / 4 * 3);
    uint32_t acc = 0;
    int bits = 0;
    size_t symbols = 0;
    size_t padding = 0;
    for (char ch : text) {
        if (ch == ' ' || ch == '\n' || ch == '\r' || ch == '\t') continue;
        if (ch == '=') {
            ++padding;
            continue;
        }
        if (padding > 0) return std::nullopt;  // Data after padding.
        const int8_t v = value[uint8_t(ch)];
        if (v < 0) return std::nullopt;
        acc = (acc << 6) | uint32_t(v);
        bits += 6;
        ++symbols;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((acc >> bits) & 0xFF));
        }
    }
    if (symbols % 4 == 1 || padding > 2) return std::nullopt;
    if (padding > 0 && (symbols + padding) % 4 != 0) return std::nullopt;
    return out;
}

}  // namespace mc::cards

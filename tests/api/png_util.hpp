// Test helper: a real, decodable PNG (RGB, uncompressed deflate blocks, correct CRCs and Adler-32)
// of a given size, so stand-in image servers send what a browser can show.
#pragma once

#include <cstdint>
#include <string>

namespace mc::test {

inline uint32_t png_crc(const std::string& data) {
    uint32_t c = 0xFFFFFFFFu;
    for (unsigned char b : data) {
        c ^= b;
        for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

inline std::string make_png(int width, int height, uint8_t shade = 200) {
    if (width < 1) width = 1;
    if (height < 1) height = 1;
    auto be32 = [](uint32_t v) {
        std::string s(4, '\0');
        for (int i = 0; i < 4; ++i) s[static_cast<size_t>(i)] = static_cast<char>((v >> (24 - 8 * i)) & 0xFF);
        return s;
    };
    auto chunk = [&](const std::string& type, const std::string& data) {
        return be32(static_cast<uint32_t>(data.size())) + type + data + be32(png_crc(type + data));
    };
    std::string raw;
    for (int y = 0; y < height; ++y) {
        raw.push_back('\0');  // Filter: none.
        for (int x = 0; x < width; ++x) {
            raw.push_back(static_cast<char>(shade));
            raw.push_back(static_cast<char>((x * 255) / width));
            raw.push_back(static_cast<char>((y * 255) / height));
        }
    }
    // zlib stream of stored blocks.
    std::string z = "\x78\x01";
    for (size_t off = 0; off < raw.size() || off == 0;) {
        const size_t n = std::min<size_t>(65535, raw.size() - off);
        const bool last = off + n >= raw.size();
        z.push_back(last ? '\x01' : '\x00');
        z.push_back(static_cast<char>(n & 0xFF));
        z.push_back(static_cast<char>(n >> 8));
        z.push_back(static_cast<char>(~n & 0xFF));
        z.push_back(static_cast<char>((~n >> 8) & 0xFF));
        z.append(raw, off, n);
        off += n;
        if (last) break;
    }
    uint32_t a = 1, b = 0;
    for (unsigned char c : raw) {
        a = (a + c) % 65521;
        b = (b + a) % 65521;
    }
    z += be32((b << 16) | a);
    std::string ihdr = be32(static_cast<uint32_t>(width)) + be32(static_cast<uint32_t>(height));
    ihdr += std::string("\x08\x02\x00\x00\x00", 5);  // 8-bit RGB.
    return std::string("\x89PNG\r\n\x1a\n", 8) + chunk("IHDR", ihdr) + chunk("IDAT", z) + chunk("IEND", "");
}

}  // namespace mc::test

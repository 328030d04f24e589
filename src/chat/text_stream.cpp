#include "chat/text_stream.hpp"
#include "core/text.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>

namespace mc::chat {
namespace {

constexpr std::string_view kImageTag = "[GENERATE_IMAGE]";
constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";
constexpr size_t kMaxMarker = 64;  // A "<|...|>" longer than this is plain text.

bool iequals_prefix(std::string_view s, std::string_view prefix) {
    if (s.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
        if (std::toupper(static_cast<unsigned char>(s[i])) != std::toupper(static_cast<unsigned char>(prefix[i]))) return false;
    }
    return true;
}

// True when `s` (shorter than `word`) could still become `word` with more text.
bool could_become(std::string_view s, std::string_view word) {
    return s.size() < word.size() && iequals_prefix(word, s);
}

// Bytes of the UTF-8 sequence starting with `c` (1 for invalid lead bytes).
size_t utf8_seq_len(unsigned char c) {
    if (c < 0x80) return 1;
    if ((c & 0xE0) == 0xC0) return 2;
    if ((c & 0xF0) == 0xE0) return 3;
    if ((c & 0xF8) == 0xF0) return 4;
    return 1;
}

uint32_t decode_utf8(std::string_view s) {
    const auto c = static_cast<unsigned char>(s[0]);
    const size_t n = utf8_seq_len(c);
    if (n == 1) return c;
    uint32_t cp = c & (0xFF >> (n + 1));
    for (size_t i = 1; i < n && i < s.size(); ++i) cp = (cp << 6) | (static_cast<unsigned char>(s[i]) & 0x3F);
    return cp;
}

bool is_emoji(uint32_t cp) {
    return (cp >= 0x1F000 && cp <= 0x1FAFF) || (cp >= 0x2600 && cp <= 0x27BF) || (cp >= 0x2B00 && cp <= 0x2BFF) ||
           (cp >= 0xFE00 && cp <= 0xFE0F) || cp == 0x200D || (cp >= 0xE0020 && cp <= 0xE007F) || cp == 0x20E3;
}

bool has_word(std::string_view s) {
    for (unsigned char c : s) {
        if (std::isalnum(c) || c >= 0x80) return true;
    }
    return false;
}

}  // namespace

// ---------------------------------------------------------------- DisplayFilter

std::string DisplayFilter::push(std::string_view piece) {
    m_buf += piece;
    return process(false);
}

std::string DisplayFilter::finish() {
    std::string out = process(true);
    if (m_in_image) {
        const std::string prompt = trim(m_image);
        if (!prompt.empty()) m_images.push_back(prompt);
        m_in_image = false;
        m_image.clear();
    }
    return out;
}

std::string DisplayFilter::process(bool final) {
    std::string out;
    size_t i = 0;
    const std::string_view b = m_buf;
    while (i < b.size()) {
        if (m_in_think) {
            const size_t end = b.find(kThinkClose, i);
            if (end == std::string_view::npos) {
                // Keep only what could be the start of "</think>".
                const size_t keep = final ? 0 : std::min(b.size() - i, kThinkClose.size() - 1);
                i = b.size() - keep;
                break;
            }
            i = end + kThinkClose.size();
            m_in_think = false;
            continue;
        }
        if (m_in_image) {
            const size_t nl = b.find('\n', i);
            if (nl == std::string_view::npos) {
                m_image.append(b.substr(i));
                i = b.size();
                break;
            }
            m_image.append(b.substr(i, nl - i));
            const std::string prompt = trim(m_image);
            if (!prompt.empty()) m_images.push_back(prompt);
            m_image.clear();
            m_in_image = false;
            i = nl;  // The newline stays in the display text.
            continue;
        }
        const size_t special = b.find_first_of("<[", i);
        if (special == std::string_view::npos) {
            out.append(b.substr(i));
            i = b.size();
            break;
        }
        out.append(b.substr(i, special - i));
        i = special;
        const std::string_view rest = b.substr(i);
        if (rest[0] == '<') {
            if (rest.starts_with("<|")) {
                const size_t close = rest.find("|>");
                if (close != std::string_view::npos && close < kMaxMarker) {
                    i += close + 2;  // A template marker: never shown.
                    continue;
                }
                if (close == std::string_view::npos && !final && rest.size() < kMaxMarker) break;  // Wait for more.
            } else if (iequals_prefix(rest, kThinkOpen)) {
                m_in_think = true;
                i += kThinkOpen.size();
                continue;
            } else if (iequals_prefix(rest, kThinkClose)) {
                i += kThinkClose.size();
                continue;
            } else if (!final && (could_become(rest, "<|") || could_become(rest, kThinkOpen) || could_become(rest, kThinkClose))) {
                break;
            }
            out += '<';
            ++i;
        } else {
            if (iequals_prefix(rest, kImageTag)) {
                m_in_image = true;
                i += kImageTag.size();
                continue;
            }
            if (!final && could_become(rest, kImageTag)) break;
            out += '[';
            ++i;
        }
    }
    m_buf.erase(0, i);
    if (final) m_buf.clear();
    return out;
}

// ---------------------------------------------------------------- SpeechSplitter

std::vector<std::string> SpeechSplitter::push(std::string_view display_text) {
    m_raw += display_text;
    consume(false);
    return std::move(m_ready);
}

std::vector<std::string> SpeechSplitter::finish() {
    consume(true);
    end_sentence(m_ready, true);
    if (!m_carry.empty()) {
        m_ready.push_back(m_carry);
        m_carry.clear();
    }
    m_in_emote = m_in_code_block = m_in_inline_code = false;
    return std::move(m_ready);
}

void SpeechSplitter::end_sentence(std::vector<std::string>& out, bool final) {
    std::string s = trim(m_sentence);
    m_sentence.clear();
    if (!has_word(s)) {
        if (final && !m_carry.empty()) {
            out.push_back(m_carry);
            m_carry.clear();
        }
        return;
    }
    std::string text = m_carry.empty() ? s : m_carry + " " + s;
    m_carry.clear();
    size_t chars = 0;
    for (unsigned char c : text) chars += (c & 0xC0) != 0x80;
    if (chars < m_min_chars && !final) {
        m_carry = std::move(text);
        return;
    }
    out.push_back(std::move(text));
}

void SpeechSplitter::consume(bool final) {
    size_t i = 0;
    const std::string_view r = m_raw;
    auto append = [&](std::string_view s) {
        for (char c : s) {
            const bool space = std::isspace(static_cast<unsigned char>(c));
            if (space) {
                if (!m_sentence.empty() && m_sentence.back() != ' ') m_sentence += ' ';
            } else {
                m_sentence += c;
            }
        }
    };
    while (i < r.size()) {
        const char c = r[i];
        const size_t left = r.size() - i;
        // Code: ``` blocks and `inline`, never spoken.
        if (c == '`') {
            if (left < 3 && !final && r.substr(i).find_first_not_of('`') == std::string_view::npos) break;
            if (r.substr(i).starts_with("```")) {
                m_in_code_block = !m_in_code_block;
                i += 3;
                continue;
            }
            if (!m_in_code_block) m_in_inline_code = !m_in_inline_code;
            ++i;
            continue;
        }
        if (m_in_code_block || m_in_inline_code) {
            if (c == '\n' && m_in_inline_code) m_in_inline_code = false;
            ++i;
            continue;
        }
        if (c == '*') {
            if (left < 2 && !final) break;  // Could be "**".
            if (left >= 2 && r[i + 1] == '*') {
                i += 2;  // **bold**: keep the words, drop the markers.
                continue;
            }
            m_in_emote = !m_in_emote;
            if (!m_in_emote) append(" ");
            ++i;
            continue;
        }
        if (m_in_emote) {
            ++i;
            continue;
        }
        if (c == '\n') {
            m_line_start = true;
            end_sentence(m_ready, false);
            ++i;
            continue;
        }
        if (m_line_start) {
            // (A '-' or '+' waits for the next character: the same text must split the same way
            // however it arrives, since spoken_prefix_end replays it a byte at a time.)
            if ((c == '-' || c == '+') && left < 2 && !final) break;
            if (c == '#' || c == '>' || ((c == '-' || c == '+') && left >= 2 && r[i + 1] == ' ')) {
                ++i;
                continue;
            }
            if (!std::isspace(static_cast<unsigned char>(c))) m_line_start = false;
        }
        if (c == '_' || c == '~' || c == '|') {
            ++i;
            continue;
        }
        const size_t n = utf8_seq_len(static_cast<unsigned char>(c));
        if (n > left) {
            if (!final) break;
            ++i;
            continue;
        }
        const uint32_t cp = decode_utf8(r.substr(i, n));
        if (is_emoji(cp)) {
            i += n;
            continue;
        }
        const bool terminator = c == '.' || c == '!' || c == '?' || cp == 0x2026 || cp == 0x3002;
        if (terminator) {
            // Take the whole run ("?!", "...", "…") plus closing quotes/brackets.
            size_t j = i;
            bool cut_char = false;  // The run reaches a character whose bytes have not all arrived.
            while (j < r.size()) {
                const size_t m = utf8_seq_len(static_cast<unsigned char>(r[j]));
                if (j + m > r.size()) {
                    cut_char = true;
                    break;
                }
                const uint32_t d = decode_utf8(r.substr(j, m));
                if (d == '.' || d == '!' || d == '?' || d == 0x2026 || d == 0x3002 || d == '"' || d == '\'' ||
                    d == ')' || d == 0x201C || d == 0x201D || d == 0x201E || d == 0x00BB || d == 0x00AB) {
                    j += m;
                } else {
                    break;
                }
            }
            if ((j >= r.size() || cut_char) && !final) break;  // Need the next character to decide.
            const bool ends = j >= r.size() || std::isspace(static_cast<unsigned char>(r[j])) || r[j] == '*';
            append(r.substr(i, j - i));
            i = j;
            if (ends) end_sentence(m_ready, false);
            continue;
        }
        // A run-on sentence is cut at a clause (or, much longer, before a space: at a word's end)
        // so its speech starts without waiting for the whole of it: synthesis time grows with the
        // length. Decided on the character itself, so it does not depend on how the text arrives.
        if (m_max_chars > 0 && c == ' ' && m_sentence.size() >= m_max_chars * 3 / 2) end_sentence(m_ready, false);
        append(r.substr(i, n));
        i += n;
        if (m_max_chars > 0 && m_sentence.size() >= m_max_chars && (c == ',' || c == ';' || c == ':')) {
            end_sentence(m_ready, false);
        }
    }
    m_raw.erase(0, i);
    if (final) m_raw.clear();
}

std::string speakable(std::string_view display_text) {
    SpeechSplitter s(0, 0);
    std::string out;
    for (auto& part : s.push(display_text)) out += (out.empty() ? "" : " ") + part;
    for (auto& part : s.finish()) out += (out.empty() ? "" : " ") + part;
    return out;
}

size_t spoken_prefix_end(std::string_view display_text, size_t sentences) {
    if (sentences == 0) return 0;
    SpeechSplitter s;
    size_t emitted = 0;
    size_t end = display_text.size();
    // Fed a byte at a time, the splitter gives a sentence out as soon as it is sure of its end,
    // which is at most a few bytes past it (the space after the mark, or a '*' it had to look past).
    for (size_t i = 0; i < display_text.size(); ++i) {
        emitted += s.push(display_text.substr(i, 1)).size();
        if (emitted >= sentences) {
            end = i + 1;
            break;
        }
    }
    if (end == display_text.size()) return end;
    // Back to the end of the sentence itself: the splitter gives a sentence out on the space after
    // it, or on a '*' that opens the next emote (which is not part of it).
    auto trim_spaces = [&] {
        while (end > 0 && std::isspace(static_cast<unsigned char>(display_text[end - 1]))) --end;
    };
    trim_spaces();
    if (end > 0 && display_text[end - 1] == '*') {
        size_t stars = 0;  // Emote marks before this one ("**" is bold, not an emote).
        for (size_t k = 0; k + 1 < end; ++k) {
            if (display_text[k] != '*') continue;
            if (k + 1 < end - 1 && display_text[k + 1] == '*') {
                ++k;
                continue;
            }
            ++stars;
        }
        if (stars % 2 == 0) {  // It opens an emote: the sentence ended before it.
            --end;
            trim_spaces();
        }
    }
    return end;
}

}  // namespace mc::chat

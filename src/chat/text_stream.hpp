// chat/text_stream: turns the model's raw text stream into what the user sees and what is spoken.
//   DisplayFilter: removes template markers (<|eot_id|>, <|start_header_id|>...), <think> blocks and
//     [GENERATE_IMAGE] tags (their prompts are collected), keeps *emotes* and markdown.
//   SpeechSplitter: from display text, emits one sentence at a time for TTS with *emotes*,
//     markdown, code, emoji and tags removed; unclosed '*' while streaming is held back; very short
//     fragments are merged with the next sentence.
// Both accept text split anywhere (mid-tag, mid-UTF-8-character) and hold back only what is
// still ambiguous. Thread safety: one instance per turn, used from one thread at a time.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mc::chat {

class DisplayFilter {
public:
    // Returns the display text that became final with this piece.
    std::string push(std::string_view piece);
    // End of stream: returns the rest (an unfinished marker is dropped, plain text kept).
    std::string finish();
    // Prompts of [GENERATE_IMAGE] tags seen so far (complete ones only).
    const std::vector<std::string>& image_prompts() const { return m_images; }

private:
    std::string process(bool final);
    std::string m_buf;
    std::vector<std::string> m_images;
    bool m_in_think = false;
    bool m_in_image = false;
    std::string m_image;
};

class SpeechSplitter {
public:
    // Sentences shorter than `min_chars` are merged with the next; longer than `max_bytes` are cut at
    // the next clause mark (or word, at 1.5 times that); 0 = no cut.
    explicit SpeechSplitter(size_t min_chars = 24, size_t max_bytes = 160) : m_min_chars(min_chars), m_max_chars(max_bytes) {}
    // Returns the sentences completed by this piece of display text.
    std::vector<std::string> push(std::string_view display_text);
    // End of stream: the last sentence, if any text is left.
    std::vector<std::string> finish();

private:
    void consume(bool final);
    void end_sentence(std::vector<std::string>& out, bool final);
    std::string m_raw;       // Display text not yet cleaned.
    std::string m_sentence;  // Cleaned text of the sentence being built.
    std::string m_carry;     // A short sentence waiting to be merged with the next.
    bool m_in_emote = false;
    bool m_in_code_block = false;
    bool m_in_inline_code = false;
    bool m_line_start = true;
    size_t m_min_chars;
    size_t m_max_chars;
    std::vector<std::string> m_ready;
};

// Removes emotes, markup, tags and emoji from a whole text (what SpeechSplitter speaks, in one go).
std::string speakable(std::string_view display_text);

// Where, in a reply's display text, its first `sentences` spoken sentences end (as a default
// SpeechSplitter cut them while the reply was spoken): the byte offset after the last of them, at
// the end of its sentence mark and closing quotes, before the space that follows. The text's size
// when it has no more sentences than that.
size_t spoken_prefix_end(std::string_view display_text, size_t sentences);

}  // namespace mc::chat

#include "chat/text_stream.hpp"

#include <gtest/gtest.h>

namespace mc::chat {
namespace {

// Feeds `text` split into pieces of `step` bytes (1 = the worst case: every byte alone).
std::string display(std::string_view text, size_t step, std::vector<std::string>* images = nullptr) {
    DisplayFilter f;
    std::string out;
    for (size_t i = 0; i < text.size(); i += step) out += f.push(text.substr(i, step));
    out += f.finish();
    if (images) *images = f.image_prompts();
    return out;
}

std::vector<std::string> speech(std::string_view text, size_t step, size_t min_chars = 24) {
    SpeechSplitter s(min_chars);
    std::vector<std::string> out;
    for (size_t i = 0; i < text.size(); i += step) {
        for (auto& x : s.push(text.substr(i, step))) out.push_back(x);
    }
    for (auto& x : s.finish()) out.push_back(x);
    return out;
}

TEST(DisplayFilter, RemovesTemplateMarkersSplitAnywhere) {
    const std::string raw = "Hallo<|eot_id|><|start_header_id|>assistant<|end_header_id|> Jonas!";
    for (size_t step : {1, 2, 3, 7, 100}) {
        EXPECT_EQ(display(raw, step), "Halloassistant Jonas!") << step;
    }
}

TEST(DisplayFilter, KeepsEmotesComparisonsAndBrackets) {
    const std::string raw = "*lächelt* 3 < 5 and [OOC: hi] <b>";
    for (size_t step : {1, 4, 100}) EXPECT_EQ(display(raw, step), raw) << step;
}

TEST(DisplayFilter, ExtractsImagePromptsAndHidesThem) {
    std::vector<std::string> images;
    const std::string raw = "Here you go! *takes a selfie*\n[GENERATE_IMAGE] smiling, red dress, beach\nLike it?";
    for (size_t step : {1, 5, 1000}) {
        EXPECT_EQ(display(raw, step, &images), "Here you go! *takes a selfie*\n\nLike it?") << step;
        ASSERT_EQ(images.size(), 1u);
        EXPECT_EQ(images[0], "smiling, red dress, beach");
    }
    EXPECT_EQ(display("Look [generate_image] at the end", 3, &images), "Look ");
    ASSERT_EQ(images.size(), 1u);
    EXPECT_EQ(images[0], "at the end");
}

TEST(DisplayFilter, DropsThinkBlocks) {
    for (size_t step : {1, 6, 100}) {
        EXPECT_EQ(display("<think>plan: be nice</think>Hi there", step), "Hi there") << step;
    }
    EXPECT_EQ(display("<think>never closed", 2), "");
}

TEST(DisplayFilter, UnfinishedMarkerAtTheEndIsKeptAsText) {
    EXPECT_EQ(display("a <|b", 1), "a <|b");
    EXPECT_EQ(display("a [GENER", 1), "a [GENER");
}

TEST(Speech, EmotesAreNeverSpoken) {
    const std::string raw = "*stöhnt leise* Das ist ein Test. *lächelt* Und noch ein Satz, der lang genug ist!";
    for (size_t step : {1, 2, 5, 1000}) {
        const auto s = speech(raw, step, 12);
        ASSERT_EQ(s.size(), 2u) << step;
        EXPECT_EQ(s[0], "Das ist ein Test.");
        EXPECT_EQ(s[1], "Und noch ein Satz, der lang genug ist!");
        for (const auto& x : s) EXPECT_EQ(x.find('*'), std::string::npos);
    }
}

TEST(Speech, UnclosedEmoteIsHeldWhileStreamingAndDroppedAtTheEnd) {
    SpeechSplitter s(0);
    auto out = s.push("Okay then. *walks away slowly. Still walking. ");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0], "Okay then.");
    EXPECT_TRUE(s.push("and more.").empty());
    EXPECT_TRUE(s.finish().empty());
}

TEST(Speech, BoldKeepsWordsAndCodeEmojiMarkdownGo) {
    const auto s = speech("# Title\n**Wirklich** schön hier 😊!\n```\ncode();\n```\nUse `x` now, please do it.", 1, 0);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0], "Title");
    EXPECT_EQ(s[1], "Wirklich schön hier !");
    EXPECT_EQ(s[2], "Use now, please do it.");
}

TEST(Speech, UmlautsSplitAcrossPiecesSurvive) {
    const std::string raw = "Grüße aus Köln, schön dich zu sehen. Bis später, mein Schatz!";
    for (size_t step : {1, 2, 3}) {
        const auto s = speech(raw, step);
        ASSERT_EQ(s.size(), 2u);
        EXPECT_EQ(s[0], "Grüße aus Köln, schön dich zu sehen.");
        EXPECT_EQ(s[1], "Bis später, mein Schatz!");
    }
}

TEST(Speech, ShortFragmentsAreMergedAndNumbersAreNotSentenceEnds) {
    const auto s = speech("Oh. Hi! The price is 3.50 euros, which is fine. Yes.", 1);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0], "Oh. Hi! The price is 3.50 euros, which is fine.");
    EXPECT_EQ(s[1], "Yes.");  // The last one is spoken even when short.
}

TEST(Speech, NestedAndPunctuatedRuns) {
    const auto s = speech("\"Really?!\" she asks... *grins **widely*** Then: nothing…", 1, 0);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s[0], "\"Really?!\"");
    EXPECT_EQ(s[1], "she asks...");
    EXPECT_EQ(s[2], "Then: nothing…");
}

TEST(Speech, SpeakableOfAWholeText) {
    EXPECT_EQ(speakable("*winkt* Hallo Jonas! *zwinkert*"), "Hallo Jonas!");
    EXPECT_EQ(speakable("*only an emote*"), "");
}

}  // namespace
}  // namespace mc::chat

namespace mc::chat {
namespace {

TEST(Speech, RunOnSentencesAreCutAtAClauseSoSpeechStartsEarly) {
    // A model that writes 400 characters without a full stop: speech must not wait for all of it.
    std::string run_on;
    for (int i = 0; i < 12; ++i) run_on += "and then we walked down to the harbour, ";
    run_on += "and it was lovely.";
    SpeechSplitter s;
    std::vector<std::string> out;
    for (size_t i = 0; i < run_on.size(); i += 7) {
        for (auto& part : s.push(run_on.substr(i, 7))) out.push_back(part);
    }
    for (auto& part : s.finish()) out.push_back(part);
    ASSERT_GE(out.size(), 3u);
    std::string joined;
    for (const auto& part : out) {
        EXPECT_LE(part.size(), 240u) << part;
        joined += (joined.empty() ? "" : " ") + part;
    }
    // Nothing lost or doubled.
    EXPECT_EQ(joined, run_on);
    // A word salad without any comma is cut at a word, never inside one.
    SpeechSplitter w;
    std::string words;
    for (int i = 0; i < 60; ++i) words += "Hamburg ";
    std::vector<std::string> parts = w.push(words);
    for (auto& part : w.finish()) parts.push_back(part);
    ASSERT_GE(parts.size(), 2u);
    for (const auto& part : parts) EXPECT_EQ(part.find("Hamburg"), 0u) << part;
}

}  // namespace
}  // namespace mc::chat

namespace mc::chat {
namespace {

// A voice call's barge-in: the reply is cut after the sentences the person heard, at the end of the
// last of them as it stands in the chat (emotes and quotes included), whatever the splitter merged.
TEST(Speech, TheEndOfTheHeardSentencesInTheDisplayedText) {
    const std::string reply =
        "*smiles softly* Hello Jonas, it is so good to hear your voice again. \"Did you sleep well last night?\" "
        "I kept thinking about our walk by the harbour! *laughs* Tell me everything, please.";
    std::vector<std::string> spoken = speech(reply, 1);
    ASSERT_EQ(spoken.size(), 4u) << spoken.size();
    EXPECT_EQ(spoken_prefix_end(reply, 0), 0u);
    EXPECT_EQ(reply.substr(0, spoken_prefix_end(reply, 1)), "*smiles softly* Hello Jonas, it is so good to hear your voice again.");
    EXPECT_EQ(reply.substr(0, spoken_prefix_end(reply, 2)),
              "*smiles softly* Hello Jonas, it is so good to hear your voice again. \"Did you sleep well last night?\"");
    EXPECT_EQ(reply.substr(0, spoken_prefix_end(reply, 3)),
              "*smiles softly* Hello Jonas, it is so good to hear your voice again. \"Did you sleep well last night?\" "
              "I kept thinking about our walk by the harbour!");
    EXPECT_EQ(spoken_prefix_end(reply, 4), reply.size());
    EXPECT_EQ(spoken_prefix_end(reply, 99), reply.size());
    // Short sentences are spoken together: "Hi. Yes." is one, so one heard sentence covers both.
    const std::string merged = "Hi. Yes. Now a sentence that is long enough to stand alone. And the last one here.";
    ASSERT_EQ(speech(merged, 1).size(), 2u);
    EXPECT_EQ(merged.substr(0, spoken_prefix_end(merged, 1)), "Hi. Yes. Now a sentence that is long enough to stand alone.");
    // German quotes and an ellipsis close a sentence as they stand.
    const std::string de = "Sie flüsterte: „Ich habe dich vermisst …“ Dann schwieg sie lange und sah aufs Meer.";
    ASSERT_EQ(speech(de, 1).size(), 2u);
    EXPECT_EQ(de.substr(0, spoken_prefix_end(de, 1)), "Sie flüsterte: „Ich habe dich vermisst …“");
    // A '*' that opens the next emote right after the mark is not part of the sentence.
    const std::string starred = "I am so glad that you called me tonight!*waves happily* Tell me about your day.";
    EXPECT_EQ(starred.substr(0, spoken_prefix_end(starred, 1)), "I am so glad that you called me tonight!");
    // A sentence ended by a line break keeps all its words, a mark inside it notwithstanding.
    const std::string lines = "The ticket to Hamburg costs 3.50\nAnd this is the second line of the reply.";
    ASSERT_EQ(speech(lines, 1).size(), 2u);
    EXPECT_EQ(lines.substr(0, spoken_prefix_end(lines, 1)), "The ticket to Hamburg costs 3.50");
}

// The replay a byte at a time must count the sentences the live reply spoke, whatever pieces the
// text came in: run-on sentences cut at a word, list items, marks at a piece's end.
TEST(Speech, SentencesDoNotDependOnHowTheTextArrives) {
    std::string run_on;
    for (int i = 0; i < 30; ++i) run_on += "Hamburg and Bremen ";
    const std::string texts[] = {run_on + "end.", "- first item of the list here\n- second item of the list here\n+ third one",
                                 "Hi. Yes. No. Well, that was a long and winding answer, wasn't it? \"Sure!\" *nods*"};
    for (const auto& text : texts) {
        const auto whole = speech(text, 100000);
        for (size_t step : {1, 2, 3, 5, 7, 16}) EXPECT_EQ(speech(text, step), whole) << step << ": " << text;
    }
}

}  // namespace
}  // namespace mc::chat

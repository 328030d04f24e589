// Unit tests of cards/lorebook: reading each lorebook shape, limits, and activation — one table
// row per rule (keys, selective logic, case, whole words, regex, constant, disabled, scan depth,
// budget, recursion, order, position).
#include <gtest/gtest.h>

#include <chrono>

#include "card_fixtures.hpp"
#include "cards/lorebook.hpp"

namespace mc::cards {
namespace {

int words(const std::string& s) { return static_cast<int>(s.size() / 4) + 1; }

std::vector<std::string> fire(const Json& book, const std::vector<std::string>& recent, int budget = 10000) {
    auto normalized = normalize_lorebook(book);
    EXPECT_TRUE(normalized) << (normalized ? "" : normalized.error().message);
    if (!normalized) return {};
    auto compiled = compile_lorebook("b", *normalized);
    EXPECT_TRUE(compiled);
    auto a = activate({*compiled}, recent, budget, words);
    std::vector<std::string> out;
    for (const auto& f : a.fired) out.push_back(f.content);
    return out;
}

Json book_of(std::vector<Json> entries, Json extra = Json::object()) {
    Json b = {{"name", "t"}, {"entries", entries}};
    b.merge_patch(extra);
    return b;
}

Json entry(const std::string& content, std::vector<std::string> keys, Json extra = Json::object()) {
    Json e = {{"content", content}, {"keys", keys}, {"extensions", Json::object()}, {"enabled", true}, {"insertion_order", 100}};
    e.merge_patch(extra);
    return e;
}

struct Row {
    const char* rule;
    Json entry;
    std::string text;  // The newest message.
    bool fires;
};

TEST(LorebookActivation, OneRowPerRule) {
    const Row rows[] = {
        {"primary key", entry("E", {"dragon"}), "I saw a dragon.", true},
        {"no key matches", entry("E", {"dragon"}), "I saw a cat.", false},
        {"any of several keys", entry("E", {"wyrm", "dragon"}), "dragon!", true},
        {"case-insensitive by default", entry("E", {"Dragon"}), "DRAGON", true},
        {"case-sensitive", entry("E", {"Dragon"}, {{"case_sensitive", true}}), "dragon", false},
        {"case-sensitive exact", entry("E", {"Dragon"}, {{"case_sensitive", true}}), "Dragon", true},
        {"substring without whole words", entry("E", {"cat"}), "concatenate", true},
        {"whole words", entry("E", {"cat"}, {{"extensions", {{"match_whole_words", true}}}}), "concatenate", false},
        {"whole words match", entry("E", {"cat"}, {{"extensions", {{"match_whole_words", true}}}}), "a cat, too", true},
        {"regex key", entry("E", {"/dra+gon/i"}), "DRAAAGON", true},
        {"regex key no match", entry("E", {"/^dragon$/"}), "a dragon", false},
        {"use_regex flag", entry("E", {"dr.gon"}, {{"use_regex", true}}), "drogon", true},
        {"catastrophic pattern runs in linear time", entry("E", {"/(a+)+$/"}), std::string(50000, 'a') + "!", false},
        {"constant", entry("E", {"zzz"}, {{"constant", true}}), "nothing", true},
        {"disabled", entry("E", {"dragon"}, {{"enabled", false}}), "dragon", false},
        {"disabled constant", entry("E", {}, {{"enabled", false}, {"constant", true}}), "x", false},
        {"AND ANY: one secondary", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "blue"}}}), "red dragon", true},
        {"AND ANY: none", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "blue"}}}), "green dragon", false},
        {"AND ALL: all", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "big"}}, {"extensions", {{"selectiveLogic", 3}}}}), "big red dragon", true},
        {"AND ALL: some", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "big"}}, {"extensions", {{"selectiveLogic", 3}}}}), "red dragon", false},
        {"NOT ANY: none", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "big"}}, {"extensions", {{"selectiveLogic", 2}}}}), "a dragon", true},
        {"NOT ANY: one", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "big"}}, {"extensions", {{"selectiveLogic", 2}}}}), "red dragon", false},
        {"NOT ALL: some", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "big"}}, {"extensions", {{"selectiveLogic", 1}}}}), "red dragon", true},
        {"NOT ALL: all", entry("E", {"dragon"}, {{"selective", true}, {"secondary_keys", {"red", "big"}}, {"extensions", {{"selectiveLogic", 1}}}}), "big red dragon", false},
        {"secondary ignored when not selective", entry("E", {"dragon"}, {{"selective", false}, {"secondary_keys", {"red"}}}), "a dragon", true},
    };
    for (const auto& row : rows) {
        const auto start = std::chrono::steady_clock::now();
        const auto fired = fire(book_of({row.entry}), {row.text});
        EXPECT_EQ(fired.size() == 1, row.fires) << row.rule;
        EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1)) << row.rule;
    }
}

TEST(LorebookActivation, V3Decorators) {
    auto one = [](const std::string& content, const std::string& text) {
        auto n = normalize_lorebook(book_of({entry(content, {"dragon"})}));
        EXPECT_TRUE(n);
        return activate({*compile_lorebook("b", *n)}, {text}, 1000, words);
    };
    auto deep = one("@@depth 3\n@@role system\nDeep.", "dragon");
    ASSERT_EQ(deep.fired.size(), 1u);
    EXPECT_EQ(deep.fired[0].position, LorePosition::AtDepth);
    EXPECT_EQ(deep.fired[0].depth, 3);
    EXPECT_EQ(deep.fired[0].content, "Deep.");
    EXPECT_EQ(one("@@position after_desc\nA.", "dragon").fired[0].position, LorePosition::AfterChar);
    EXPECT_TRUE(one("@@exclude_keys red, blue\nX.", "a red dragon").fired.empty());
    EXPECT_EQ(one("@@exclude_keys red, blue\nX.", "a green dragon").fired.size(), 1u);
    EXPECT_TRUE(one("@@dont_activate\nX.", "dragon").fired.empty());
    EXPECT_EQ(one("@@activate\nX.", "nothing").fired.size(), 1u);
}

TEST(LorebookActivation, ScanDepthCountsMessagesNewestFirst) {
    const Json b = book_of({entry("E", {"dragon"})}, {{"scan_depth", 1}});
    EXPECT_TRUE(fire(b, {"nothing", "dragon"}).empty());
    EXPECT_EQ(fire(b, {"dragon", "nothing"}).size(), 1u);
    const Json deeper = book_of({entry("E", {"dragon"})}, {{"scan_depth", 2}});
    EXPECT_EQ(fire(deeper, {"nothing", "dragon"}).size(), 1u);
    const Json zero = book_of({entry("E", {"dragon"})}, {{"scan_depth", 0}});
    EXPECT_TRUE(fire(zero, {"dragon"}).empty());
}

TEST(LorebookActivation, InsertionOrderAndBudgetDropLowPriorityFirst) {
    const Json b = book_of({entry("C", {"x"}, {{"insertion_order", 30}, {"priority", 1}}),
                            entry("A", {"x"}, {{"insertion_order", 10}, {"priority", 5}}),
                            entry("B", {"x"}, {{"insertion_order", 20}, {"priority", 9}})});
    EXPECT_EQ(fire(b, {"x"}), (std::vector<std::string>{"A", "B", "C"}));
    // Each entry costs 1 + 1 tokens here: a budget of 4 keeps the two highest priorities.
    EXPECT_EQ(fire(b, {"x"}, 4), (std::vector<std::string>{"A", "B"}));
    Json with_budget = b;
    with_budget["token_budget"] = 2;
    EXPECT_EQ(fire(with_budget, {"x"}), (std::vector<std::string>{"B"}));
}

TEST(LorebookActivation, RecursionWithLimitAndExclusions) {
    const std::vector<Json> chain = {entry("mentions beta", {"alpha"}), entry("mentions gamma", {"beta"}),
                                     entry("mentions delta", {"gamma"}), entry("mentions epsilon", {"delta"}),
                                     entry("end", {"epsilon"})};
    EXPECT_EQ(fire(book_of(chain), {"alpha"}).size(), 1u);  // Off by default.
    // Level 0 fires alpha; recursion levels 1..3 fire beta, gamma, delta; epsilon is past the limit.
    EXPECT_EQ(fire(book_of(chain, {{"recursive_scanning", true}}), {"alpha"}).size(), 4u);
    std::vector<Json> excluded = chain;
    excluded[1]["extensions"]["exclude_recursion"] = true;
    EXPECT_EQ(fire(book_of(excluded, {{"recursive_scanning", true}}), {"alpha"}).size(), 1u);
    std::vector<Json> prevented = chain;
    prevented[0]["extensions"]["prevent_recursion"] = true;
    EXPECT_EQ(fire(book_of(prevented, {{"recursive_scanning", true}}), {"alpha"}).size(), 1u);
}

TEST(LorebookActivation, PositionsAndReasons) {
    const Json b = book_of({entry("before", {"x"}, {{"position", "before_char"}}),
                            entry("after", {"x"}, {{"position", "after_char"}}),
                            entry("deep", {"x"}, {{"extensions", {{"position", 4}, {"depth", 2}}}}),
                            entry("always", {}, {{"constant", true}})});
    auto n = normalize_lorebook(b);
    ASSERT_TRUE(n);
    auto a = activate({*compile_lorebook("id1", *n)}, {"x"}, 1000, words);
    ASSERT_EQ(a.fired.size(), 4u);
    EXPECT_EQ(a.fired[0].position, LorePosition::BeforeChar);
    EXPECT_EQ(a.fired[1].position, LorePosition::AfterChar);
    EXPECT_EQ(a.fired[2].position, LorePosition::AtDepth);
    EXPECT_EQ(a.fired[2].depth, 2);
    EXPECT_EQ(a.fired[0].reason, "key 'x'");
    EXPECT_EQ(a.fired[3].reason, "constant");
    EXPECT_EQ(a.fired[0].lorebook_id, "id1");
}

TEST(LorebookFormats, SillyTavernWorldInfoIsReadWithEveryOption) {
    const Json st = {{"entries",
                      {{"1", {{"uid", 1}, {"key", {"castle"}}, {"keysecondary", {"night"}}, {"comment", "Castle"},
                              {"content", "The castle is old."}, {"constant", false}, {"selective", true},
                              {"selectiveLogic", 3}, {"order", 50}, {"position", 4}, {"disable", false}, {"depth", 2},
                              {"caseSensitive", true}, {"matchWholeWords", true}, {"probability", 100},
                              {"someFutureOption", "kept"}}},
                       {"0", {{"uid", 0}, {"key", {"moat"}}, {"content", "A moat."}, {"disable", true}, {"position", 1},
                              {"order", 10}}}}}};
    auto b = normalize_lorebook(st);
    ASSERT_TRUE(b) << b.error().message;
    const Json& e0 = (*b)["entries"][0];
    const Json& e1 = (*b)["entries"][1];
    EXPECT_EQ(e0["content"], "A moat.");
    EXPECT_EQ(e0["enabled"], false);
    EXPECT_EQ(e0["position"], "after_char");
    EXPECT_EQ(e1["keys"], Json({"castle"}));
    EXPECT_EQ(e1["secondary_keys"], Json({"night"}));
    EXPECT_EQ(e1["insertion_order"], 50);
    EXPECT_EQ(e1["case_sensitive"], true);
    EXPECT_EQ(e1["extensions"]["selectiveLogic"], 3);
    EXPECT_EQ(e1["extensions"]["match_whole_words"], true);
    EXPECT_EQ(e1["extensions"]["depth"], 2);
    EXPECT_EQ(e1["extensions"]["position"], 4);
    EXPECT_EQ(e1["extensions"]["someFutureOption"], "kept");
    EXPECT_EQ(fire(st, {"castle at night"}).size(), 1u);
    EXPECT_TRUE(fire(st, {"Castle at night"}).empty());  // Case-sensitive.
    // Older files: keys as one comma-separated string.
    const Json old = {{"entries", {{"0", {{"key", "tower, gate ,"}, {"content", "T."}}}}}};
    EXPECT_EQ((*normalize_lorebook(old))["entries"][0]["keys"], Json({"tower", "gate"}));
    // V3 wrapper and the V2 character_book shape.
    EXPECT_TRUE(normalize_lorebook(Json{{"spec", "lorebook_v3"}, {"data", test::full_book(1)}}));
    auto v2 = normalize_lorebook(test::full_book(2));
    ASSERT_TRUE(v2);
    EXPECT_EQ(*v2, *normalize_lorebook(*v2));  // Stable: normalizing twice changes nothing.
}

TEST(LorebookFormats, LimitsAndBadRegexNameTheField) {
    std::vector<Json> many(10000, entry("E", {"k"}));
    auto r = normalize_lorebook(book_of(many));
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, ErrorCode::TooLarge);
    EXPECT_EQ(r.error().field, "entries");
    auto lookaround = normalize_lorebook(book_of({entry("E", {"ok", "/(?<=a)b/"})}));
    ASSERT_FALSE(lookaround);
    EXPECT_EQ(lookaround.error().field, "entries[0].keys[1]");
    auto huge = normalize_lorebook(book_of({entry("E", {"/((a{100}){100}){100}/"})}));
    ASSERT_FALSE(huge);
    auto wrong = normalize_lorebook(book_of({entry("E", {"k"}, {{"insertion_order", "first"}})}));
    ASSERT_FALSE(wrong);
    EXPECT_EQ(wrong.error().field, "entries[0].insertion_order");
    auto pos = normalize_lorebook(book_of({entry("E", {"k"}, {{"position", "middle"}})}));
    ASSERT_FALSE(pos);
    EXPECT_EQ(pos.error().field, "entries[0].position");
}

TEST(LorebookActivation, ThousandEntriesScanWithinFiveMilliseconds) {
    std::vector<Json> entries;
    for (int i = 0; i < 1000; ++i) entries.push_back(entry("Fact " + std::to_string(i), {"topic" + std::to_string(i), "alias" + std::to_string(i)}));
    auto n = normalize_lorebook(book_of(entries, {{"scan_depth", 4}}));
    ASSERT_TRUE(n);
    auto compiled = compile_lorebook("b", *n);
    ASSERT_TRUE(compiled);
    std::vector<std::string> recent(4, std::string(1500, 'w') + " topic17 and topic999 ");
    const auto start = std::chrono::steady_clock::now();
    auto a = activate({*compiled}, recent, 100000, words);
    const auto ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    // Keys are substrings unless whole words are asked for: "topic17" also fires topic1, "topic999"
    // also topic9 and topic99.
    EXPECT_EQ(a.fired.size(), 5u);
    // Generous for sanitizer builds; bench/ measures the real figure.
    EXPECT_LT(ms, 250.0);
}

}  // namespace
}  // namespace mc::cards

// api::Fields (the typed reader every route uses) and api::check_access (the access guard).
#include <gtest/gtest.h>

#include "api/access_guard.hpp"
#include "api/json_io.hpp"
#include "llm/engine.hpp"

namespace mc::api {
namespace {

TEST(Fields, WrongTypesNameTheFieldAndTheExpectedType) {
    const Json body = Json::parse(R"({"url":5,"keep":"4","pinned":1,"t":0.5})");
    Fields f(body);
    (void)f.string("url", 100);
    ASSERT_TRUE(f.error());
    EXPECT_EQ(f.error()->field, "url");
    EXPECT_EQ(f.error()->message, "'url' must be a string (got an integer)");
    Fields g(body);
    (void)g.integer_or("keep", 0, 10, 4);
    EXPECT_EQ(g.error()->message, "'keep' must be an integer (got a string)");
    Fields h(body);
    (void)h.boolean_or("pinned", false);
    EXPECT_EQ(h.error()->field, "pinned");
    Fields k(body);
    (void)k.integer("t", 0, 10);
    EXPECT_EQ(k.error()->message, "'t' must be an integer (got a number)");
}

// Regression (issue 9, item 2): {"keep":4294967295} was cast to int and crashed the server.
TEST(Fields, HugeAndNegativeIntegersAreOutOfRangeNotWrapped) {
    for (const char* doc : {R"({"keep":4294967295})", R"({"keep":18446744073709551615})", R"({"keep":-1})",
                            R"({"keep":1e300})", R"({"keep":9223372036854775807})"}) {
        const Json body = Json::parse(doc);
        Fields f(body);
        const auto keep = f.integer_or("keep", 0, 100000, 4);
        ASSERT_TRUE(f.error()) << doc;
        EXPECT_EQ(f.error()->field, "keep");
        EXPECT_EQ(keep, 4) << doc;
    }
    // Non-negative literals are stored as unsigned: the minimum still applies.
    const Json zero = Json::parse(R"({"version":0})");
    Fields z(zero);
    (void)z.integer("version", 1, 1000000);
    ASSERT_TRUE(z.error());
    EXPECT_EQ(z.error()->field, "version");
    const Json good = Json::parse(R"({"keep":7,"v":3.0})");
    Fields ok(good);
    EXPECT_EQ(ok.integer_or("keep", 0, 10, 4), 7);
    EXPECT_EQ(ok.integer("v", 0, 10), 3);
    EXPECT_FALSE(ok.error());
}

TEST(Fields, LimitsUnknownFieldsAndTheFirstErrorWins) {
    const Json a = Json::parse(R"({"name":"abcdef","typo":1,"n":99})");
    Fields f(a);
    f.only({"name", "n"});
    (void)f.string("name", 3);
    (void)f.integer("n", 0, 10);
    ASSERT_TRUE(f.error());
    EXPECT_EQ(f.error()->field, "typo");
    const Json b = Json::parse(R"({"name":"abcdef"})");
    Fields g(b);
    (void)g.string("name", 3);
    EXPECT_EQ(g.error()->code, ErrorCode::TooLarge);
    const Json c = Json::parse(R"({"stop":["a",5]})");
    Fields h(c);
    (void)h.strings("stop", 16, 256);
    EXPECT_EQ(h.error()->field, "stop");
    const Json d = Json::object();
    Fields m(d);
    (void)m.string("content", 10);
    EXPECT_EQ(m.error()->message, "'content' (a string) is required");
}

// Issue 17: every problem is kept with a reason and figures, so a form marks each field at once
// and a client can say it in the person's language; the error body lists them all.
TEST(Fields, EveryProblemIsKeptWithItsReasonAndFigures) {
    const Json body = Json::parse(R"({"name":"abcdef","n":99,"ok":true,"x":"1","typo":0})");
    Fields f(body);
    f.only({"name", "n", "ok", "x"});
    (void)f.string("name", 3);
    (void)f.integer("n", 0, 10);
    (void)f.opt_boolean("ok");
    (void)f.opt_number("x", 0, 1);
    (void)f.string("missing", 10);
    ASSERT_TRUE(f.error());
    const Error& e = *f.error();
    EXPECT_EQ(e.field, "typo");
    EXPECT_EQ(e.reason, "unknown_field");
    ASSERT_EQ(e.more.size(), 4u);
    EXPECT_EQ(e.more[0].field, "name");
    EXPECT_EQ(e.more[0].reason, "too_long");
    EXPECT_EQ(e.more[0].params, (std::vector<std::pair<std::string, std::string>>{{"max", "3"}, {"unit", "bytes"}}));
    EXPECT_EQ(e.more[1].reason, "range");
    EXPECT_EQ(e.more[1].params, (std::vector<std::pair<std::string, std::string>>{{"min", "0"}, {"max", "10"}}));
    EXPECT_EQ(e.more[2].reason, "type");
    EXPECT_EQ(e.more[2].params.front(), (std::pair<std::string, std::string>{"expected", "number"}));
    EXPECT_EQ(e.more[3].field, "missing");
    EXPECT_EQ(e.more[3].reason, "required");
    const Json out = error_json(e)["error"];
    EXPECT_EQ(out["field"], "typo");
    ASSERT_EQ(out["errors"].size(), 5u);
    EXPECT_EQ(out["errors"][2]["params"], (Json{{"min", "0"}, {"max", "10"}}));
    EXPECT_EQ(out["errors"][1]["code"], "too_large");
    // A reader fed an endless list of bad fields keeps a bounded number of them.
    Json many = Json::object();
    // Keys built with append, not "k" + ...: GCC 12 warns (-Wrestrict, a false positive) at -O3.
    std::vector<std::string> keys;
    for (int i = 0; i < 500; ++i) keys.emplace_back(1, 'k').append(std::to_string(i));
    for (const auto& k : keys) many[k] = "x";
    Fields g(many);
    for (const auto& k : keys) (void)g.opt_integer(k.c_str(), 0, 1);
    EXPECT_EQ(g.error()->more.size(), Fields::kMaxProblems);
}

// Issue 15: range errors wrote their bounds as floats ("between 1.000000 and 32768.000000").
TEST(Fields, RangeErrorsWriteBoundsAsPeopleWriteThem) {
    llm::Sampling s;
    s.max_tokens = 0;
    auto r = llm::validate(s);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message, "'max_tokens' must be between 1 and 32768");
    s = llm::Sampling{};
    s.top_p = 2;
    EXPECT_EQ(llm::validate(s).error().message, "'top_p' must be between 0 and 1");
    s = llm::Sampling{};
    s.repeat_last_n = -7;
    EXPECT_EQ(llm::validate(s).error().message, "'repeat_last_n' must be between -1 and 1048576");
    const Json big = Json::parse(R"({"x":5e7,"y":-3})");
    Fields f(big);
    (void)f.opt_number("x", 0, 1048576);
    EXPECT_EQ(f.error()->message, "'x' must be a number from 0 to 1048576");
    Fields g(big);
    (void)g.opt_number("y", -2.5, 0.25);
    EXPECT_EQ(g.error()->message, "'y' must be a number from -2.5 to 0.25");
}

http::Request request(const std::string& method, const std::string& host, const std::string& origin = "") {
    http::Request r;
    r.method = method;
    r.path = "/api/characters";
    r.headers.emplace("Host", host);
    if (!origin.empty()) r.headers.emplace("Origin", origin);
    return r;
}

// Regression (issue 9, item 5): a page on another site could create a character.
TEST(AccessGuard, CrossOriginWritesAndForeignHostsAreRefused) {
    AccessPolicy p;
    EXPECT_FALSE(check_access(request("POST", "127.0.0.1:8000"), p));  // curl: no Origin.
    EXPECT_FALSE(check_access(request("POST", "127.0.0.1:8000", "http://127.0.0.1:8000"), p));
    EXPECT_FALSE(check_access(request("POST", "localhost:5173", "http://localhost:5173"), p));  // Vite's proxy.
    EXPECT_FALSE(check_access(request("GET", "[::1]:8000", "http://evil.example"), p));  // Reads: the browser's same-origin rule.
    auto evil = check_access(request("POST", "127.0.0.1:8000", "http://evil.example"), p);
    ASSERT_TRUE(evil);
    EXPECT_EQ(evil->status, 403);
    EXPECT_NE(evil->body.find("server.allowed_origins"), std::string::npos);
    EXPECT_EQ(check_access(request("DELETE", "127.0.0.1:8000", "null"), p)->status, 403);
    // DNS rebinding: a foreign name resolving to 127.0.0.1 is refused, reads included.
    EXPECT_EQ(check_access(request("GET", "evil.example:8000"), p)->status, 403);
    auto cross = request("POST", "127.0.0.1:8000");
    cross.headers.emplace("Sec-Fetch-Site", "cross-site");
    EXPECT_EQ(check_access(cross, p)->status, 403);
    p.allowed_hosts = split_list(" mypc.local , ");
    p.allowed_origins = split_list("http://evil.example");
    EXPECT_FALSE(check_access(request("GET", "MyPC.local:8000"), p));
    EXPECT_FALSE(check_access(request("POST", "127.0.0.1:8000", "http://evil.example"), p));
}

TEST(AccessGuard, ATokenIsRequiredWhenSet) {
    AccessPolicy p;
    p.token = "s3cret";
    p.loopback_only = false;
    EXPECT_EQ(check_access(request("GET", "192.168.1.5:8000"), p)->status, 401);
    auto bearer = request("GET", "192.168.1.5:8000");
    bearer.headers.emplace("Authorization", "Bearer s3cret");
    EXPECT_FALSE(check_access(bearer, p));
    auto cookie = request("POST", "192.168.1.5:8000", "http://192.168.1.5:8000");
    cookie.headers.emplace("Cookie", "a=b; mycandy_token=s3cret");
    EXPECT_FALSE(check_access(cookie, p));
    auto wrong = request("GET", "192.168.1.5:8000");
    wrong.headers.emplace("Authorization", "Bearer s3cre");
    EXPECT_EQ(check_access(wrong, p)->status, 401);
}

}  // namespace
}  // namespace mc::api

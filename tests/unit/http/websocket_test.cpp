// The WebSocket codec against RFC 6455's own examples (section 1.3 and 5.7), and the reader's
// refusals. The ComfyUI client and the tests' stand-in both use these functions, so pinning them to
// the RFC keeps the pair honest.
#include <gtest/gtest.h>

#include "http/websocket.hpp"

namespace mc::http {
namespace {

TEST(WebSocket, AcceptKeyIsTheRfcExample) {
    EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(WebSocket, FramesAreTheRfcExamples) {
    EXPECT_EQ(websocket_frame(WsOpcode::Text, "Hello"), std::string("\x81\x05\x48\x65\x6c\x6c\x6f", 7));
    EXPECT_EQ(websocket_frame(WsOpcode::Text, "Hello", 0x37fa213d),
              std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11));
    // 256 bytes: 16-bit length; 64 KiB: 64-bit length.
    EXPECT_EQ(websocket_frame(WsOpcode::Binary, std::string(256, 'x')).substr(0, 4), std::string("\x82\x7E\x01\x00", 4));
    EXPECT_EQ(websocket_frame(WsOpcode::Binary, std::string(65536, 'x')).substr(0, 10),
              std::string("\x82\x7F\x00\x00\x00\x00\x00\x01\x00\x00", 10));
}

TEST(WebSocket, ReaderUnmasksJoinsFragmentsAndWaitsForWholeFrames) {
    WsReader r(1 << 20);
    // The RFC's fragmented "Hel" + "lo", then a masked "Hello", delivered a byte at a time.
    const std::string bytes = std::string("\x01\x03\x48\x65\x6c\x80\x02\x6c\x6f", 9) +
                              std::string("\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58", 11) +
                              websocket_frame(WsOpcode::Ping, "hi");
    std::vector<WsMessage> got;
    for (char c : bytes) {
        auto m = r.push(std::string_view(&c, 1));
        ASSERT_TRUE(m.has_value());
        for (auto& x : *m) got.push_back(std::move(x));
    }
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].op, WsOpcode::Text);
    EXPECT_EQ(got[0].payload, "Hello");
    EXPECT_EQ(got[1].payload, "Hello");
    EXPECT_EQ(got[2].op, WsOpcode::Ping);
    EXPECT_EQ(got[2].payload, "hi");
}

TEST(WebSocket, ReaderRefusesOversizedAndMalformedFrames) {
    WsReader small(10);
    EXPECT_FALSE(small.push(websocket_frame(WsOpcode::Text, std::string(11, 'x'))).has_value());
    WsReader rsv(100);
    EXPECT_FALSE(rsv.push(std::string("\xC1\x00", 2)).has_value());  // RSV1 without an extension.
    WsReader cont(100);
    EXPECT_FALSE(cont.push(std::string("\x80\x00", 2)).has_value());  // Continuation with nothing to continue.
    WsReader ctrl(100);
    EXPECT_FALSE(ctrl.push(std::string("\x09\x00", 2)).has_value());  // Fragmented ping.
    WsReader op(100);
    EXPECT_FALSE(op.push(std::string("\x83\x00", 2)).has_value());  // Reserved opcode.
}

TEST(WebSocket, ConnectNamesAnUnreachableServer) {
    auto c = WebSocketClient::connect("http://127.0.0.1:1", "/ws", 2000);
    ASSERT_FALSE(c.has_value());
    EXPECT_EQ(c.error().code, ErrorCode::Unavailable);
    EXPECT_NE(c.error().message.find("ws://127.0.0.1:1/ws"), std::string::npos) << c.error().message;
    EXPECT_FALSE(WebSocketClient::connect("ftp://x", "/ws", 100).has_value());
}

}  // namespace
}  // namespace mc::http

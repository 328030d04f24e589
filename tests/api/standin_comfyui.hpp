// Test helper: a stand-in ComfyUI server that follows its real protocol (shared/reference/
// comfyui-api.md): POST /prompt validates the submitted graph the way ComfyUI does (known node
// types, links to existing nodes, typed KSampler inputs, an output node, no unfilled placeholder,
// LoadImage naming an uploaded file), runs it on an executor thread that reports on the WebSocket
// /ws?clientId= (execution_start, executing, progress, executed, executing null / execution_error /
// execution_interrupted), keeps /history, serves a real PNG on /view, takes /upload/image
// (multipart), /interrupt, /object_info, /system_stats. It is a small HTTP/1.1 server of its own
// (one request per connection) because Debian's cpp-httplib cannot upgrade to a WebSocket; the
// frames come from our http/websocket codec, which a unit test pins to RFC 6455's examples.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "http/websocket.hpp"
#include "png_util.hpp"

namespace mc::test {

class StandinComfyUi {
public:
    struct Options {
        bool websocket = true;                // false: /ws refuses the upgrade (clients must poll /history).
        int steps = 5;                        // Progress messages per prompt.
        std::chrono::milliseconds step_time{5};
        bool fail_in_sampler = false;         // execution_error in the KSampler.
        bool view_not_image = false;          // /view answers HTML.
        std::set<std::string> missing_nodes;  // Node types this server lacks.
        int png_side = 0;                     // Output picture's side in pixels (0: the latent's size / 8).
    };

    StandinComfyUi() : StandinComfyUi(Options{}) {}
    explicit StandinComfyUi(Options o) : m_o(std::move(o)) {
        m_listen = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const int one = 1;
        ::setsockopt(m_listen, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(m_listen, reinterpret_cast<sockaddr*>(&a), sizeof a);
        ::listen(m_listen, 64);
        socklen_t len = sizeof a;
        ::getsockname(m_listen, reinterpret_cast<sockaddr*>(&a), &len);
        m_port = ntohs(a.sin_port);
        m_accept = std::thread([this] { accept_loop(); });
        m_exec = std::thread([this] { exec_loop(); });
    }
    ~StandinComfyUi() {
        {
            std::lock_guard lock(m_mu);
            m_quit = true;
            m_cv.notify_all();
            for (auto& [id, fd] : m_sockets) ::shutdown(fd, SHUT_RDWR);
        }
        ::shutdown(m_listen, SHUT_RDWR);
        ::close(m_listen);
        m_accept.join();
        m_exec.join();
        std::vector<std::thread> conns;
        {
            std::lock_guard lock(m_mu);
            conns.swap(m_conns);
        }
        for (auto& t : conns) t.join();
    }

    std::string url() const { return "http://127.0.0.1:" + std::to_string(m_port); }

    // What clients did.
    std::vector<nlohmann::json> prompts() { std::lock_guard l(m_mu); return m_prompts; }
    std::vector<std::chrono::steady_clock::time_point> prompt_times() { std::lock_guard l(m_mu); return m_prompt_times; }
    std::map<std::string, std::string> uploads() { std::lock_guard l(m_mu); return m_uploads; }
    int interrupts() { std::lock_guard l(m_mu); return m_interrupts; }
    int ws_clients() { std::lock_guard l(m_mu); return m_ws_count; }
    // Holds prompts in the queue until release() (to test cancel and progress while running).
    void hold(bool on) { std::lock_guard l(m_mu); m_hold = on; m_cv.notify_all(); }

private:
    using Json = nlohmann::json;
    struct Req {
        std::string method, path, query, body;
        std::map<std::string, std::string> headers;  // Lower-case names.
    };
    struct Pending {
        std::string id, client;
        Json graph;
    };

    static std::string lower(std::string s) {
        for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return s;
    }
    static void send_all(int fd, const std::string& s) {
        size_t off = 0;
        while (off < s.size()) {
            const ssize_t n = ::send(fd, s.data() + off, s.size() - off, MSG_NOSIGNAL);
            if (n <= 0) return;
            off += static_cast<size_t>(n);
        }
    }
    static void respond(int fd, int status, const std::string& type, const std::string& body) {
        const char* reason = status == 200 ? "OK" : status == 400 ? "Bad Request" : status == 404 ? "Not Found" : "Error";
        send_all(fd, "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\nContent-Type: " + type +
                         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body);
    }
    static std::string query_param(const std::string& q, const std::string& key) {
        size_t pos = 0;
        while (pos <= q.size()) {
            size_t amp = q.find('&', pos);
            if (amp == std::string::npos) amp = q.size();
            const std::string kv = q.substr(pos, amp - pos);
            if (kv.rfind(key + "=", 0) == 0) {
                std::string v = kv.substr(key.size() + 1), out;
                for (size_t i = 0; i < v.size(); ++i) {
                    if (v[i] == '%' && i + 2 < v.size()) {
                        out += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
                        i += 2;
                    } else {
                        out += v[i] == '+' ? ' ' : v[i];
                    }
                }
                return out;
            }
            pos = amp + 1;
        }
        return {};
    }

    void accept_loop() {
        for (;;) {
            const int fd = ::accept4(m_listen, nullptr, nullptr, SOCK_CLOEXEC);
            if (fd < 0) return;
            std::lock_guard lock(m_mu);
            if (m_quit) {
                ::close(fd);
                return;
            }
            const int id = m_next_socket++;
            m_sockets[id] = fd;
            m_conns.emplace_back([this, fd, id] {
                serve(fd);
                std::lock_guard l(m_mu);
                m_sockets.erase(id);
                ::close(fd);
            });
        }
    }

    bool read_request(int fd, Req& r) {
        std::string buf;
        size_t end;
        char tmp[65536];
        while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
            const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) return false;
            buf.append(tmp, static_cast<size_t>(n));
        }
        const std::string head = buf.substr(0, end);
        r.body = buf.substr(end + 4);
        const size_t sp1 = head.find(' '), sp2 = head.find(' ', sp1 + 1);
        r.method = head.substr(0, sp1);
        std::string target = head.substr(sp1 + 1, sp2 - sp1 - 1);
        if (const size_t q = target.find('?'); q != std::string::npos) {
            r.query = target.substr(q + 1);
            target.resize(q);
        }
        r.path = target;
        size_t pos = head.find("\r\n");
        while (pos != std::string::npos && pos < head.size()) {
            const size_t next = head.find("\r\n", pos + 2);
            const std::string line = head.substr(pos + 2, (next == std::string::npos ? head.size() : next) - pos - 2);
            if (const size_t colon = line.find(':'); colon != std::string::npos) {
                std::string v = line.substr(colon + 1);
                while (!v.empty() && v[0] == ' ') v.erase(0, 1);
                r.headers[lower(line.substr(0, colon))] = v;
            }
            pos = next;
        }
        const size_t want = r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
        while (r.body.size() < want) {
            const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) return false;
            r.body.append(tmp, static_cast<size_t>(n));
        }
        return true;
    }

    void serve(int fd) {
        Req r;
        if (!read_request(fd, r)) return;
        if (r.path.rfind("/api/", 0) == 0) r.path = r.path.substr(4);  // Every route is also under /api.
        if (r.method == "GET" && r.path == "/ws") return websocket(fd, r);
        if (r.method == "GET" && r.path == "/system_stats") {
            return respond(fd, 200, "application/json", R"({"system":{"os":"posix","comfyui_version":"standin"},"devices":[]})");
        }
        if (r.method == "GET" && r.path == "/object_info") return respond(fd, 200, "application/json", object_info().dump());
        if (r.method == "POST" && r.path == "/upload/image") return upload(fd, r);
        if (r.method == "POST" && r.path == "/prompt") return prompt(fd, r);
        if (r.method == "POST" && r.path == "/interrupt") {
            std::lock_guard lock(m_mu);
            ++m_interrupts;
            m_interrupt = true;
            m_cv.notify_all();
            respond(fd, 200, "application/json", "{}");
            return;
        }
        if (r.method == "GET" && r.path.rfind("/history/", 0) == 0) {
            const std::string id = r.path.substr(9);
            std::lock_guard lock(m_mu);
            Json out = Json::object();
            if (m_history.count(id)) out[id] = m_history[id];
            return respond(fd, 200, "application/json", out.dump());
        }
        if (r.method == "GET" && r.path == "/view") {
            const std::string name = query_param(r.query, "filename");
            std::lock_guard lock(m_mu);
            if (!m_images.count(name) || query_param(r.query, "type") != "output") return respond(fd, 404, "text/plain", "not found");
            if (m_o.view_not_image) return respond(fd, 200, "text/html", "<html>oops</html>");
            return respond(fd, 200, "image/png", m_images[name]);
        }
        respond(fd, 404, "text/plain", "404: Not Found");
    }

    Json object_info() const {
        const std::vector<std::string> all = {"CheckpointLoaderSimple", "EmptyLatentImage", "CLIPTextEncode", "KSampler", "VAEDecode",
                                              "SaveImage", "LoadImage", "LoraLoader", "IPAdapterUnifiedLoader", "IPAdapter"};
        Json out = Json::object();
        for (const auto& n : all) {
            if (m_o.missing_nodes.count(n)) continue;
            out[n] = {{"input", {{"required", Json::object()}}}, {"name", n}, {"output_node", n == "SaveImage"}};
        }
        if (out.contains("CheckpointLoaderSimple")) {
            out["CheckpointLoaderSimple"]["input"]["required"]["ckpt_name"] = Json::array({Json::array({"pony.safetensors", "sdxl.safetensors"})});
        }
        return out;
    }

    void upload(int fd, const Req& r) {
        const std::string type = r.headers.count("content-type") ? r.headers.at("content-type") : "";
        const size_t b = type.find("boundary=");
        if (type.rfind("multipart/form-data", 0) != 0 || b == std::string::npos) return respond(fd, 400, "text/plain", "not multipart");
        const std::string boundary = "--" + type.substr(b + 9);
        std::map<std::string, std::pair<std::string, std::string>> parts;  // name -> (filename, bytes)
        size_t pos = r.body.find(boundary);
        while (pos != std::string::npos) {
            pos += boundary.size();
            if (r.body.compare(pos, 2, "--") == 0) break;
            const size_t head_end = r.body.find("\r\n\r\n", pos);
            const size_t next = r.body.find("\r\n" + boundary, head_end);
            if (head_end == std::string::npos || next == std::string::npos) return respond(fd, 400, "text/plain", "bad multipart");
            const std::string head = r.body.substr(pos, head_end - pos);
            auto attr = [&](const std::string& key) {
                const size_t at = head.find(key + "=\"");
                if (at == std::string::npos) return std::string();
                const size_t s = at + key.size() + 2;
                return head.substr(s, head.find('"', s) - s);
            };
            parts[attr("name")] = {attr("filename"), r.body.substr(head_end + 4, next - head_end - 4)};
            pos = next + 2;
        }
        if (!parts.count("image") || parts["image"].first.empty()) return respond(fd, 400, "text/plain", "no image part");
        const std::string sub = parts.count("subfolder") ? parts["subfolder"].second : "";
        const std::string name = parts["image"].first;
        {
            std::lock_guard lock(m_mu);
            m_uploads[sub.empty() ? name : sub + "/" + name] = parts["image"].second;
        }
        respond(fd, 200, "application/json", Json{{"name", name}, {"subfolder", sub}, {"type", "input"}}.dump());
    }

    static bool is_link(const Json& v) { return v.is_array() && v.size() == 2 && v[0].is_string() && v[1].is_number_integer(); }

    static bool has_placeholder(const Json& v) {
        if (v.is_string()) {
            const auto& s = v.get_ref<const std::string&>();
            for (const char* p : {"%prompt%", "%negative_prompt%", "%seed%", "%width%", "%height%", "%steps%", "%scale%",
                                  "%checkpoint%", "%sampler%", "%scheduler%", "%char_avatar%", "%likeness_weight%"}) {
                if (s.find(p) != std::string::npos) return true;
            }
        }
        return false;
    }

    // ComfyUI's validation, as far as the graphs we send go.
    void prompt(int fd, const Req& r) {
        const Json body = Json::parse(r.body, nullptr, false);
        auto error = [&](const std::string& type, const std::string& message, const Json& node_errors = Json::object()) {
            respond(fd, 400, "application/json",
                    Json{{"error", {{"type", type}, {"message", message}, {"details", ""}, {"extra_info", Json::object()}}},
                         {"node_errors", node_errors}}.dump());
        };
        if (!body.is_object() || !body.contains("prompt") || !body["prompt"].is_object()) return error("no_prompt", "No prompt provided");
        const Json& g = body["prompt"];
        const Json info = object_info();
        Json node_errors = Json::object();
        bool output = false;
        for (const auto& [id, node] : g.items()) {
            const std::string type = node.value("class_type", "");
            if (!info.contains(type)) {
                return error("missing_node_type", "Node '" + type + "' not found. The custom node may not be installed.");
            }
            output = output || type == "SaveImage";
            Json errors = Json::array();
            for (const auto& [name, v] : node["inputs"].items()) {
                if (is_link(v) && !g.contains(v[0].get<std::string>())) {
                    errors.push_back({{"type", "bad_linked_input"}, {"message", "Bad linked input"}, {"details", name}});
                }
                if (has_placeholder(v)) {
                    errors.push_back({{"type", "value_not_valid"}, {"message", "Unfilled placeholder"}, {"details", name + ": " + v.dump()}});
                }
            }
            if (type == "KSampler") {
                const Json& in = node["inputs"];
                for (const char* k : {"seed", "steps"}) {
                    if (!in.contains(k) || !in[k].is_number_integer()) {
                        errors.push_back({{"type", "invalid_input_type"}, {"message", "Failed to convert an input value to a INT value"}, {"details", k}});
                    }
                }
                if (!in.contains("cfg") || !in["cfg"].is_number()) {
                    errors.push_back({{"type", "invalid_input_type"}, {"message", "Failed to convert an input value to a FLOAT value"}, {"details", "cfg"}});
                }
            }
            if (type == "EmptyLatentImage") {
                for (const char* k : {"width", "height"}) {
                    if (!node["inputs"].contains(k) || !node["inputs"][k].is_number_integer()) {
                        errors.push_back({{"type", "invalid_input_type"}, {"message", "Failed to convert an input value to a INT value"}, {"details", k}});
                    }
                }
            }
            if (type == "LoadImage") {
                std::lock_guard lock(m_mu);
                if (!m_uploads.count(node["inputs"].value("image", ""))) {
                    errors.push_back({{"type", "value_not_in_list"}, {"message", "Value not in list"}, {"details", "image: " + node["inputs"].value("image", "")}});
                }
            }
            if (type == "CheckpointLoaderSimple") {
                const std::string ckpt = node["inputs"].value("ckpt_name", "");
                if (ckpt != "pony.safetensors" && ckpt != "sdxl.safetensors") {
                    errors.push_back({{"type", "value_not_in_list"}, {"message", "Value not in list"}, {"details", "ckpt_name: '" + ckpt + "' not in list"}});
                }
            }
            if (!errors.empty()) node_errors[id] = {{"errors", errors}, {"dependent_outputs", Json::array()}, {"class_type", type}};
        }
        if (!output) return error("prompt_no_outputs", "Prompt has no outputs");
        if (!node_errors.empty()) return error("prompt_outputs_failed_validation", "Prompt outputs failed validation", node_errors);
        Pending p{"p" + std::to_string(m_next_prompt++), body.value("client_id", ""), g};
        {
            std::lock_guard lock(m_mu);
            m_prompts.push_back(g);
            m_prompt_times.push_back(std::chrono::steady_clock::now());
            m_queue.push_back(p);
            m_cv.notify_all();
        }
        respond(fd, 200, "application/json", Json{{"prompt_id", p.id}, {"number", m_next_prompt.load()}, {"node_errors", Json::object()}}.dump());
    }

    void websocket(int fd, Req r) {
        const std::string client = query_param(r.query, "clientId");
        if (!m_o.websocket || lower(r.headers["upgrade"]) != "websocket" || !r.headers.count("sec-websocket-key")) {
            return respond(fd, 400, "text/plain", "no websocket here");
        }
        send_all(fd, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " +
                         http::websocket_accept_key(r.headers["sec-websocket-key"]) + "\r\n\r\n");
        {
            std::lock_guard lock(m_mu);
            m_ws[client] = fd;
            ++m_ws_count;
        }
        send_ws(client, {{"type", "status"}, {"data", {{"status", {{"exec_info", {{"queue_remaining", 0}}}}}, {"sid", client}}}});
        // Client frames: must be masked; a close ends the socket.
        http::WsReader reader(1 << 20);
        char tmp[4096];
        for (;;) {
            const ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
            if (n <= 0) break;
            auto msgs = reader.push(std::string_view(tmp, static_cast<size_t>(n)));
            if (!msgs) break;
            bool closed = false;
            for (const auto& m : *msgs) closed = closed || m.op == http::WsOpcode::Close;
            if (closed) break;
        }
        std::lock_guard lock(m_mu);
        m_ws.erase(client);
    }

    void send_ws(const std::string& client, const Json& msg) {
        std::lock_guard lock(m_ws_mu);
        int fd = -1;
        {
            std::lock_guard l(m_mu);
            if (m_ws.count(client)) fd = m_ws[client];
        }
        if (fd >= 0) send_all(fd, http::websocket_frame(http::WsOpcode::Text, msg.dump()));
    }

    void exec_loop() {
        std::unique_lock lock(m_mu);
        for (;;) {
            m_cv.wait(lock, [&] { return m_quit || (!m_queue.empty() && !m_hold); });
            if (m_quit) return;
            Pending p = m_queue.front();
            m_queue.pop_front();
            m_interrupt = false;
            lock.unlock();
            run(p);
            lock.lock();
        }
    }

    void run(const Pending& p) {
        auto msg = [&](const std::string& type, Json data) {
            data["prompt_id"] = p.id;
            send_ws(p.client, {{"type", type}, {"data", data}});
        };
        msg("execution_start", {{"timestamp", 0}});
        std::string sampler, save;
        for (const auto& [id, node] : p.graph.items()) {
            if (node["class_type"] == "KSampler") sampler = id;
            if (node["class_type"] == "SaveImage") save = id;
        }
        msg("executing", {{"node", sampler}});
        for (int i = 1; i <= m_o.steps; ++i) {
            bool interrupted = false;
            {
                std::unique_lock lock(m_mu);
                m_cv.wait_for(lock, m_o.step_time, [&] { return m_quit || m_interrupt; });
                if (m_quit) return;
                interrupted = m_interrupt;
                if (interrupted) {
                    m_history[p.id] = {{"prompt", {0, p.id, p.graph, Json::object(), Json::array()}}, {"outputs", Json::object()},
                                       {"status", {{"status_str", "error"}, {"completed", false}, {"messages", Json::array()}}}};
                }
            }
            if (interrupted) {
                msg("execution_interrupted", {{"node_id", sampler}, {"node_type", "KSampler"}, {"executed", Json::array()}});
                return;
            }
            msg("progress", {{"value", i}, {"max", m_o.steps}, {"node", sampler}});
            if (m_o.fail_in_sampler && i == 2) {
                Json err = {{"node_id", sampler}, {"node_type", "KSampler"}, {"exception_message", "CUDA out of memory"},
                            {"exception_type", "torch.OutOfMemoryError"}, {"traceback", Json::array()}};
                msg("execution_error", err);
                std::lock_guard lock(m_mu);
                m_history[p.id] = {{"prompt", {0, p.id, p.graph, Json::object(), Json::array()}}, {"outputs", Json::object()},
                                   {"status", {{"status_str", "error"}, {"completed", false}, {"messages", {{"execution_error", err}}}}}};
                return;
            }
        }
        const std::string file = "mycandy_" + p.id + "_.png";
        const Json images = Json::array({{{"filename", file}, {"subfolder", ""}, {"type", "output"}}});
        {
            std::lock_guard lock(m_mu);
            const Json& latent = [&]() -> const Json& {
                for (const auto& [id, node] : p.graph.items()) {
                    if (node["class_type"] == "EmptyLatentImage") return node["inputs"];
                }
                static const Json none = Json::object();
                return none;
            }();
            m_images[file] = m_o.png_side > 0 ? make_png(m_o.png_side, m_o.png_side)
                                              : make_png(latent.value("width", 64) / 8, latent.value("height", 64) / 8);
            m_history[p.id] = {{"prompt", {0, p.id, p.graph, Json::object(), Json::array({save})}},
                               {"outputs", {{save, {{"images", images}}}}},
                               {"status", {{"status_str", "success"}, {"completed", true}, {"messages", Json::array()}}}};
        }
        msg("executed", {{"node", save}, {"output", {{"images", images}}}});
        msg("executing", {{"node", nullptr}});
        msg("execution_success", Json::object());
    }

    Options m_o;
    int m_listen = -1;
    int m_port = 0;
    std::mutex m_mu;          // Guards the queue, flags, sockets and records below.
    std::mutex m_ws_mu;       // One WebSocket frame written at a time.
    std::condition_variable m_cv;
    bool m_quit = false, m_hold = false, m_interrupt = false;
    std::map<int, int> m_sockets;
    int m_next_socket = 0;
    std::vector<std::thread> m_conns;
    std::thread m_accept, m_exec;
    std::atomic<int> m_next_prompt{1};
    std::deque<Pending> m_queue;
    std::map<std::string, int> m_ws;
    int m_ws_count = 0;
    std::vector<Json> m_prompts;
    std::vector<std::chrono::steady_clock::time_point> m_prompt_times;
    std::map<std::string, std::string> m_uploads, m_images;
    std::map<std::string, Json> m_history;
    int m_interrupts = 0;
};

}  // namespace mc::test

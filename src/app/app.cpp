#include "app/app.hpp"

#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "api/access_guard.hpp"
#include "api/chat_json.hpp"
#include "api/context.hpp"
#include "api/routes.hpp"
#include "api/json_io.hpp"
#include "core/log.hpp"
#include "core/settings.hpp"
#include "core/text.hpp"
#include "http/server.hpp"
#include "http/tls.hpp"
#include "chat/chat_service.hpp"
#include "chat/memory.hpp"
#include "jobs/job_runner.hpp"
#include "llm/engine_manager.hpp"
#include "llm/llama_engine.hpp"
#include "llm/test_model.hpp"
#include "image/image_service.hpp"
#include "voice/tts_service.hpp"
#include "store/blob_store.hpp"
#include "store/character_store.hpp"
#include "store/chat_store.hpp"
#include "store/db.hpp"
#include "store/job_store.hpp"
#include "store/memory_store.hpp"
#include "voice/tts_test_model.hpp"
#include "stt/stt_service.hpp"
#include "stt/whisper_files.hpp"

#ifndef MYCANDY_VERSION
#define MYCANDY_VERSION "0.0.0"
#endif

namespace mc::app {
namespace {

namespace fs = std::filesystem;

constexpr const char* kUsage =
    "usage: mycandy [serve] [options]\n"
    "       mycandy make-test-model --out FILE [--size tiny|small|1b] [--type q8_0|f16] [--seed N] [--vocab GGUF]\n"
    "                               [--layers N] [--blocks random|zero] [--output tied|random]\n"
    "       mycandy make-test-model --kind qwen3tts|pockettts --out FILE --mmproj FILE [--size tiny|1.7b] [--seed N]\n"
    "       mycandy make-test-model --kind whisper|whisper-en|vad --out FILE [--size tiny|base] [--seed N]\n"
    "       mycandy --help | --version\n"
    "\n"
    "Your private AI companion: serves the web UI at http://HOST:PORT/ui and the API at /api.\n"
    "\n"
    "options for serve:\n"
    "  --host HOST       address to listen on (default 127.0.0.1)\n"
    "  --port PORT       port to listen on (default 8000)\n"
    "  --data-dir DIR    characters.db, outputs/, logs/, models/ (default ./data)\n"
    "  --config FILE     settings file (default config/settings.json)\n"
    "  --https           serve https (as server.https): a self-signed certificate in DATA/tls unless\n"
    "                    server.tls_cert and server.tls_key name your own\n"
    "\n"
    "make-test-model writes a llama-architecture GGUF with random weights, the Llama-3 tokenizer and\n"
    "chat template: tiny (loads instantly, for tests) or 1b (Llama-3.2-1B's shape, for benchmarks).\n"
    "With --kind qwen3tts or pockettts it writes a random text-to-speech pair (backbone --out, mmproj\n"
    "--mmproj) for the embedded voice engine: tiny, or 1.7b (Qwen3-TTS-12Hz-1.7B-Base's shape).\n"
    "With --kind whisper (multilingual) or whisper-en (English only) it writes a random-weight Whisper\n"
    "model in whisper.cpp's ggml format: tiny (the smallest shape, for tests) or base (ggml-base.bin's\n"
    "shape, for benchmarks); --kind vad writes a Silero-shaped VAD that detects loudness.\n";

struct Options {
    std::string command = "serve";
    std::string host = "127.0.0.1";
    int port = 8000;
    std::string data_dir = "data";
    std::string config = "config/settings.json";
    bool https = false;
};

int die(const std::string& message, int code = 1) {
    std::fprintf(stderr, "mycandy: %s\n", message.c_str());
    return code;
}

// Returns an error message, or "" when the options parsed.
std::string parse_options(int argc, char** argv, Options& o) {
    std::vector<std::string> args(argv + 1, argv + argc);
    size_t i = 0;
    if (i < args.size() && !args[i].starts_with("-")) o.command = args[i++];
    for (; i < args.size(); ++i) {
        const std::string& a = args[i];
        if (a == "--help" || a == "-h") { o.command = "help"; return ""; }
        if (a == "--version") { o.command = "version"; return ""; }
        auto value = [&](std::string& out) -> bool {
            if (i + 1 >= args.size()) return false;
            out = args[++i];
            return true;
        };
        std::string v;
        if (a == "--host") { if (!value(o.host)) return "--host needs a value"; }
        else if (a == "--data-dir") { if (!value(o.data_dir)) return "--data-dir needs a value"; }
        else if (a == "--config") { if (!value(o.config)) return "--config needs a value"; }
        else if (a == "--https") { o.https = true; }
        else if (a == "--port") {
            if (!value(v)) return "--port needs a value";
            char* end = nullptr;
            const long p = std::strtol(v.c_str(), &end, 10);
            if (v.empty() || *end || p < 0 || p > 65535) return "--port must be a number from 0 to 65535 (got '" + v + "')";
            o.port = static_cast<int>(p);
        } else {
            return "unknown option '" + a + "' (see mycandy --help)";
        }
    }
    if (o.command != "serve") return "unknown command '" + o.command + "' (see mycandy --help)";
    return "";
}

// Creates the data folder layout and proves it is writable.
std::string prepare_data_dir(const std::string& dir) {
    std::error_code ec;
    for (const char* sub : {"", "/logs", "/outputs", "/models"}) {
        fs::create_directories(dir + sub, ec);
        if (ec) return "data dir " + dir + " cannot be created: " + ec.message();
    }
    const std::string probe = dir + "/.write-test-" + random_hex(4);
    FILE* f = std::fopen(probe.c_str(), "w");
    if (!f) return "data dir " + dir + " is not writable: " + std::strerror(errno);
    std::fclose(f);
    std::remove(probe.c_str());
    return "";
}

std::string exe_dir() {
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    return ec ? std::string(".") : exe.parent_path().string();
}

std::string find_ui_dir(const Settings& settings) {
    std::vector<std::string> candidates;
    if (!settings.str("server.ui_dir").empty()) candidates.push_back(settings.str("server.ui_dir"));
    candidates.push_back(exe_dir() + "/../ui/dist");                 // build/mycandy in a checkout
    candidates.push_back(exe_dir() + "/../share/mycandy/ui/dist");   // installed: <prefix>/bin/mycandy
    candidates.push_back("ui/dist");
    for (const auto& c : candidates) {
        if (fs::is_regular_file(c + "/index.html")) return fs::weakly_canonical(c).string();
    }
    return "";
}

// Blocks SIGINT/SIGTERM in every thread; a dedicated thread waits for them and stops the server.
class SignalWaiter {
public:
    SignalWaiter() {
        sigemptyset(&m_set);
        sigaddset(&m_set, SIGINT);
        sigaddset(&m_set, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &m_set, nullptr);
        signal(SIGPIPE, SIG_IGN);
    }
    void start(http::Server& server, std::function<void()> before_stop) {
        m_thread = std::thread([this, &server, before_stop = std::move(before_stop)] {
            int sig = 0;
            sigwait(&m_set, &sig);
            if (!m_quit) {
                log::info("received ", sig == SIGINT ? "SIGINT" : "SIGTERM", ", shutting down");
                before_stop();
            }
            server.stop();
        });
    }
    ~SignalWaiter() {
        if (m_thread.joinable()) {
            m_quit = true;
            pthread_kill(m_thread.native_handle(), SIGTERM);
            m_thread.join();
        }
    }

private:
    sigset_t m_set{};
    std::thread m_thread;
    std::atomic<bool> m_quit{false};
};

int serve(const Options& o) {
    const auto started = std::chrono::steady_clock::now();
    // Before any thread exists: glibc would give up to 8 malloc arenas per core to the HTTP workers
    // and turn threads, each keeping a megabyte or two of fragments, and a long-running server's
    // RSS crept up as more of them came into use (bench/soak_bench). Two are plenty here: the
    // threads that allocate much (inference, a turn) are few, and the model's buffers are not malloc's.
    ::mallopt(M_ARENA_MAX, 2);
    // Blocks of 256 KB and more (KV states being stashed and restored, prompt token arrays, audio)
    // come from mmap and go back to the system when freed. glibc otherwise raises this threshold
    // each time such a block is freed, up to 32 MB, after which they are carved from the heap and
    // leave holes of every size behind: the soak's RSS grew 6.1 % over 700 turns that way, 3.3 %
    // with the threshold fixed (bench/README.md). Setting it also turns off that adjustment.
    ::mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    SignalWaiter signals;  // Before any thread exists, so all inherit the mask.

    auto loaded = load_settings_file(o.config);
    if (!loaded) {
        // Every bad key at once, so one edit of the file fixes them all.
        std::string all = loaded.error().message;
        for (const auto& m : loaded.error().more) all += "; " + m.message;
        return die(all);
    }
    if (auto err = prepare_data_dir(o.data_dir); !err.empty()) return die(err);
    const std::string data_dir = fs::weakly_canonical(o.data_dir).string();
    std::string log_error;
    if (!log::open_file(data_dir + "/logs/mycandy.log", log_error)) return die(log_error);
    log::Level level = log::Level::Info;
    log::parse_level(loaded->settings.str("logging.level"), level);
    log::set_level(level);
    for (const auto& w : loaded->warnings) log::warn(o.config, ": ", w);

    auto db = store::Db::open(data_dir + "/characters.db");
    if (!db) return die(db.error().message);
    store::CharacterStore characters(**db);
    store::ChatStore chats(**db);
    store::LorebookStore lorebooks(**db);
    store::BlobStore blobs(data_dir + "/outputs");
    SettingsStore settings(o.config, loaded->settings);
    llm::EngineManager engines(data_dir);
    engines.configure(loaded->settings);
    store::MemoryStore memory(**db);
    store::JobStore job_store(**db);
    // Every kind of job but pictures and voice trainings, which run on runners of their own.
    jobs::JobRunner runner(job_store, store::KindFilter{{"image", "voice_training"}, false});
    chat::MemoryService memory_service(memory, chats, characters, settings, [&engines] { return engines.get(); });
    memory_service.register_jobs(runner);
    api::register_model_jobs(runner, data_dir);
    // Declared before the chat service: its turn threads speak through it until they are joined.
    voice::TtsService tts(settings, blobs, data_dir);
    stt::SttService stt(settings, data_dir);
    // RVC trainings, one at a time on their own runner (hours long: a summary must not wait).
    voice::VoiceTrainer trainer(settings, characters, job_store, data_dir, [&blobs](const std::string& b) { return blobs.path_of(b); });
    // Pictures render on the image service's own runner (a download does not hold them up).
    image::ImageService images(settings, blobs, characters, chats, job_store, data_dir);
    chat::ChatService chat(chats, characters, settings, [&engines] { return engines.get(); });
    chat.set_memory(&memory_service);
    chat.set_lorebooks(&lorebooks);
    chat.set_speaker(tts.speaker_factory());
    chat.set_imager(images.imager_factory(), [&images] { return images.instruction(); });
    std::atomic<bool> stopping{false};

    // https (server.https or --https): the person's own certificate, or a self-signed one for this
    // machine's names and addresses, kept in data/tls so a browser's exception survives restarts.
    const bool https = o.https || loaded->settings.boolean("server.https");
    const std::string scheme = https ? "https" : "http";
    http::TlsFiles tls;
    if (https) {
        const std::string own_cert = loaded->settings.str("server.tls_cert");
        const std::string own_key = loaded->settings.str("server.tls_key");
        if (own_cert.empty() != own_key.empty()) {
            return die("server.tls_cert and server.tls_key go together: set both (your own certificate) or neither (a self-signed one)");
        }
        Result<http::TlsFiles> files = std::unexpected(Error{ErrorCode::Internal, "", ""});
        if (!own_cert.empty()) {
            files = http::check_certificate(own_cert, own_key);
        } else {
            std::vector<std::string> names = http::local_names();
            for (const auto& h : api::split_list(loaded->settings.str("server.allowed_hosts"))) names.push_back(h);
            if (o.host != "0.0.0.0" && o.host != "::") names.push_back(o.host);
            files = http::ensure_self_signed(data_dir + "/tls", names);
        }
        if (!files) return die(files.error().message);
        tls = *files;
        log::info("https: certificate ", tls.cert_file, tls.generated ? " (made now)" : "", ", SHA-256 fingerprint ", tls.fingerprint);
    }

    http::ServerOptions server_options;
    server_options.tls_cert_file = tls.cert_file;
    server_options.tls_key_file = tls.key_file;
    server_options.error_response = [](int status, const std::string& message) {
        ErrorCode code = ErrorCode::Internal;
        if (status == 404) code = ErrorCode::NotFound;
        else if (status == 413) code = ErrorCode::TooLarge;
        else if (status >= 400 && status < 500) code = ErrorCode::InvalidInput;
        return api::json_response(status, api::error_json({code, message, status == 413 ? "body" : ""}));
    };
    http::Server server(server_options);
    api::Context ctx{MYCANDY_VERSION, data_dir, settings, **db, characters, chats, blobs, chat, memory, runner,
                     [&engines] { return engines.get(); }, [&engines] { return engines.status(); },
                     [&engines, &settings] { engines.configure(*settings.current()); },
                     [&stopping] { return stopping.load(); }, &tts, &images, &stt, &lorebooks, &trainer};
    // Voice calls: each utterance becomes a turn started as a typed message's would be.
    call::CallService calls(settings, stt, tts, chat, blobs,
                             [&ctx](const std::string& chat_id, const std::string& text) { return api::start_spoken_turn(ctx, chat_id, text); },
                             api::turn_event_json);
    ctx.calls = &calls;
    api::register_routes(server, ctx);

    const std::string ui_dir = find_ui_dir(loaded->settings);
    if (!ui_dir.empty()) {
        server.serve_static("/ui", ui_dir);
    } else {
        server.route(http::Method::Get, "/ui", [](const http::Request&) {
            http::Response r;
            r.status = 503;
            r.content_type = "text/html; charset=utf-8";
            r.body = "<!doctype html><title>MyCandyLocal</title><p>The web UI is not built. Run <code>make run</code> "
                     "(it builds ui/dist) or set <code>server.ui_dir</code>. The API is at <a href=\"/api/health\">/api/health</a>.</p>";
            return r;
        });
    }
    server.redirect("/", "/ui/");
    server.redirect("/favicon.ico", "/ui/favicon.svg");  // Browsers and tools that ask the root.

    // Access control (api/access_guard): Host and Origin checks always; beyond this machine,
    // server.api_token is required and every request must carry it.
    api::AccessPolicy access;
    access.token = loaded->settings.str("server.api_token");
    access.loopback_only = o.host == "127.0.0.1" || o.host == "localhost" || o.host == "::1";
    access.allowed_hosts = api::split_list(loaded->settings.str("server.allowed_hosts"));
    access.allowed_origins = api::split_list(loaded->settings.str("server.allowed_origins"));
    if (!access.loopback_only && access.token.empty()) {
        return die("refusing to listen on " + o.host + " without an access token: set server.api_token in " + o.config +
                   " (then open " + scheme + "://<this machine>:" + std::to_string(o.port) + "/ui/?token=<token> once per browser)");
    }
    server.set_guard([access](const http::Request& req) { return api::check_access(req, access); });

    if (auto bound = server.bind(o.host, o.port); !bound) return die(bound.error().message);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    // What /api/health says about how to reach this server (the UI shows it for the phone).
    ctx.server_info = {{"scheme", scheme}, {"tls_fingerprint", https ? Json(tls.fingerprint) : Json(nullptr)}, {"urls", Json::array()}};
    if (!access.loopback_only) {
        const bool any = o.host == "0.0.0.0" || o.host == "::";
        for (const auto& name : any ? http::local_names() : std::vector<std::string>{o.host}) {
            const bool v6 = name.find(':') != std::string::npos;
            ctx.server_info["urls"].push_back(scheme + "://" + (v6 ? "[" + name + "]" : name) + ":" + std::to_string(server.port()) + "/ui/");
        }
    }
    log::info("mycandy ", MYCANDY_VERSION, " serving ", scheme, "://", o.host, ":", server.port(), "/ui (data ", data_dir,
              ", config ", o.config, ", ui ", ui_dir.empty() ? "not built" : ui_dir, ") started in ", ms, " ms");
    if (!access.loopback_only) log::info("listening on ", o.host, ": requests need the access token (server.api_token)");
    runner.start();
    images.start();
    trainer.start();
    signals.start(server, [&] {
        // Open streams end: their turns stop and store what they have.
        stopping = true;
        calls.end_all("server_stopping");
        chat.cancel_all();
    });
    server.run();
    calls.end_all("server_stopping");
    chat.cancel_all();
    runner.stop();
    images.stop();
    trainer.stop();
    engines.shutdown();
    log::info("stopped");
    return 0;
}

int make_test_model(int argc, char** argv) {
    llm::TestModelOptions t;
    std::string kind = "llama", mmproj;
    bool size_given = false;
    for (int i = 2; i < argc; ++i) {
        const std::string a = argv[i];
        if (i + 1 >= argc) return die(a + " needs a value (see mycandy --help)", 2);
        const std::string v = argv[++i];
        if (a == "--out") t.out = v;
        else if (a == "--size") t.size = v, size_given = true;
        else if (a == "--type") t.type = v;
        else if (a == "--vocab") t.vocab = v;
        else if (a == "--seed") t.seed = std::strtoull(v.c_str(), nullptr, 10);
        else if (a == "--layers") t.layers = std::atoi(v.c_str()) > 0 ? std::atoi(v.c_str()) : -1;
        else if (a == "--blocks") t.blocks = v;
        else if (a == "--output") t.output = v;
        else if (a == "--kind") kind = v;
        else if (a == "--mmproj") mmproj = v;
        else return die("unknown option '" + a + "' for make-test-model", 2);
    }
    const auto started = std::chrono::steady_clock::now();
    if (kind == "whisper" || kind == "whisper-en" || kind == "vad") {
        if (t.out.empty()) return die("--out FILE is required", 2);
        if (!mmproj.empty()) return die("--mmproj is only for --kind qwen3tts|pockettts", 2);
        Result<void> done;
        if (kind == "vad") {
            done = stt::write_vad_test_model(t.out);
        } else {
            stt::WhisperTestModelOptions o;
            o.out = t.out;
            o.multilingual = kind == "whisper";
            o.seed = t.seed;
            const std::string size = size_given ? t.size : "tiny";
            if (size == "base") o.n_state = 512, o.n_head = 8, o.n_layer = 6;
            else if (size != "tiny") return die("--size for --kind whisper is tiny or base", 2);
            done = stt::write_whisper_test_model(o);
        }
        if (!done) return die(done.error().message, 2);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
        std::printf("wrote %s (%s, %.1f MB) in %lld ms\n", t.out.c_str(), kind.c_str(), static_cast<double>(fs::file_size(t.out)) / 1e6,
                    static_cast<long long>(ms));
        return 0;
    }
    if (kind != "llama") {
        // A text-to-speech pair for the embedded voice engine (voice/tts_test_model).
        voice::TtsTestModelOptions o{kind, t.out, mmproj, size_given ? t.size : "tiny", t.seed};
        if (auto done = voice::write_tts_test_model(o); !done) return die(done.error().message, 2);
        const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
        std::printf("wrote %s and %s (%s %s, %.1f + %.1f MB) in %lld ms\n", o.out.c_str(), o.mmproj.c_str(), kind.c_str(),
                    o.size.c_str(), static_cast<double>(fs::file_size(o.out)) / 1e6,
                    static_cast<double>(fs::file_size(o.mmproj)) / 1e6, static_cast<long long>(ms));
        return 0;
    }
    if (!mmproj.empty()) return die("--mmproj is only for --kind qwen3tts|pockettts", 2);
    if (auto done = llm::write_test_model(t); !done) return die(done.error().message, 2);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count();
    std::printf("wrote %s (%s, %s, %.1f MB) in %lld ms\n", t.out.c_str(), t.size.c_str(), t.type.c_str(),
                static_cast<double>(fs::file_size(t.out)) / 1e6, static_cast<long long>(ms));
    return 0;
}

}  // namespace

int run_main(int argc, char** argv) {
    if (argc > 1 && std::string(argv[1]) == "make-test-model") return make_test_model(argc, argv);
    Options o;
    if (auto err = parse_options(argc, argv, o); !err.empty()) return die(err, 2);
    if (o.command == "help") {
        std::fputs(kUsage, stdout);
        return 0;
    }
    if (o.command == "version") {
        const auto& rt = llm::runtime_info();
        std::printf("mycandy %s (llama.cpp %s, %s build)\n", MYCANDY_VERSION, rt.release.c_str(),
                    rt.gpu_build.empty() ? "CPU" : rt.gpu_build.c_str());
        return 0;
    }
    return serve(o);
}

}  // namespace mc::app

// Black-box tests of pictures: a reply's [GENERATE_IMAGE] tag starts a job while the reply streams,
// our real ComfyUI client renders it on a stand-in ComfyUI that validates the graph as ComfyUI
// does (or on a stand-in A1111 server), and the picture lands in the message, the media list and
// /api/media. Every failure (server down, missing nodes, errors while running, not an image,
// bad workflows, bad input) is named.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <openssl/evp.h>

#include "png_util.hpp"
#include "server_process.hpp"
#include "sse_client.hpp"
#include "standin_comfyui.hpp"
#include "standin_llm.hpp"

namespace mc::test {
namespace {

using Clock = std::chrono::steady_clock;

bool is_png(const std::string& b) { return b.size() > 8 && b.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0; }

class ImageApi : public ::testing::Test {
protected:
    void start(const std::string& reply, Json media) {
        llm = std::make_unique<StandinLlm>([reply](const Json&) { return reply; });
        Json s = {{"llm", {{"backend", "remote"}, {"llama_cpp_url", llm->url()}}}, {"media", std::move(media)}};
        server = std::make_unique<ServerProcess>(s);
        settled_health(*server);
    }
    // A character (optionally with an avatar) and a chat with it.
    std::string new_chat(Json character = Json{{"name", "Mia"}, {"appearance", "1girl, long silver hair, green eyes"}},
                         const std::string& avatar = {}) {
        auto c = body_json(post("/api/characters", character));
        character_id = c["id"];
        if (!avatar.empty()) {
            auto r = server->client().Put(("/api/characters/" + character_id + "/avatar").c_str(), avatar, "image/png");
            EXPECT_EQ(r->status, 200) << r->body;
        }
        auto chat = body_json(post("/api/chats", Json{{"character_id", character_id}}));
        return chat["chat"]["id"];
    }
    SseResult turn(const std::string& chat, const std::string& content = "Send me a picture?") {
        return post_sse(server->port(), "/api/chats/" + chat + "/messages", Json{{"content", content}, {"speak", false}}.dump());
    }
    httplib::Result post(const std::string& path, const Json& body) {
        return server->client().Post(path.c_str(), body.dump(), "application/json");
    }
    // Waits (bounded) for a job to end and returns it.
    Json wait_job(const std::string& id, int seconds = 30) {
        const auto deadline = Clock::now() + std::chrono::seconds(seconds);
        Json j;
        while (Clock::now() < deadline) {
            j = body_json(server->client().Get(("/api/jobs/" + id).c_str()));
            const std::string st = j.value("status", "");
            if (st == "done" || st == "failed" || st == "cancelled") return j;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        ADD_FAILURE() << "job " << id << " did not end: " << j.dump();
        return j;
    }
    // The image entries of a chat's messages.
    std::vector<Json> image_entries(const std::string& chat) {
        std::vector<Json> out;
        auto page = body_json(server->client().Get(("/api/chats/" + chat + "/messages").c_str()));
        for (const auto& m : page["messages"]) {
            for (const auto& e : m["media"]) {
                if (e.value("kind", "") == "image") out.push_back(e);
            }
        }
        return out;
    }
    static const Json* node_of(const Json& graph, const std::string& type) {
        for (const auto& [id, n] : graph.items()) {
            if (n["class_type"] == type) return &n;
        }
        return nullptr;
    }
    std::unique_ptr<StandinLlm> llm;
    std::unique_ptr<ServerProcess> server;
    std::string character_id;
};

TEST_F(ImageApi, TagStartsAPictureWhileTheReplyStreamsAndItLandsInTheMessageInTheCharactersLikeness) {
    StandinComfyUi comfy;
    start("*smiles* Here you go! [GENERATE_IMAGE] sitting on a bed,\tred dress\nDo you like it, darling?",
          {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}});
    const std::string avatar = make_png(16, 16, 90);
    const std::string chat = new_chat(Json{{"name", "Mia"}, {"appearance", "1girl, long silver hair, green eyes"}}, avatar);
    auto r = turn(chat);
    ASSERT_EQ(r.status, 200) << r.body;
    ASSERT_NE(r.last("done"), nullptr);

    // The image event comes as soon as the tag's line is complete: before the words after it.
    ASSERT_EQ(r.count("image"), 1u);
    size_t image_at = 0, after_at = 0;
    for (size_t i = 0; i < r.events.size(); ++i) {
        if (r.events[i].event == "image") image_at = i;
        if (r.events[i].event == "token" && r.events[i].data["text"].get<std::string>().find("like") != std::string::npos) after_at = i;
    }
    EXPECT_LT(image_at, after_at);
    const Json ev = r.last("image")->data;
    EXPECT_EQ(ev["prompt"], "sitting on a bed, red dress");
    const std::string job = ev["job"]["id"];
    // The tag is never shown or spoken.
    const std::string shown = r.text_of("token");
    EXPECT_EQ(shown.find("GENERATE_IMAGE"), std::string::npos) << shown;
    EXPECT_EQ(shown.find("red dress"), std::string::npos) << shown;
    EXPECT_EQ(r.text_of("speech").find("red dress"), std::string::npos);
    EXPECT_NE(shown.find("Do you like it"), std::string::npos);

    const Json done = wait_job(job);
    ASSERT_EQ(done["status"], "done") << done.dump();
    const std::string url = done["result"]["url"];

    // What ComfyUI was sent: the built-in graph with every placeholder filled, typed.
    auto prompts = comfy.prompts();
    ASSERT_EQ(prompts.size(), 1u);
    const Json& g = prompts[0];
    const Json* ks = node_of(g, "KSampler");
    ASSERT_NE(ks, nullptr);
    EXPECT_TRUE(ks->at("inputs")["seed"].is_number_integer());
    EXPECT_EQ(ks->at("inputs")["steps"], 25);
    EXPECT_EQ(ks->at("inputs")["sampler_name"], "euler_ancestral");
    std::string positive, negative;
    for (const auto& [id, n] : g.items()) {
        if (n["class_type"] != "CLIPTextEncode") continue;
        (n["inputs"]["text"].get<std::string>().find("score_9") == 0 ? positive : negative) = n["inputs"]["text"];
    }
    EXPECT_EQ(positive, "score_9, score_8_up, score_7_up, 1girl, long silver hair, green eyes, sitting on a bed, red dress");
    EXPECT_NE(negative.find("lowres"), std::string::npos);
    EXPECT_EQ(node_of(g, "CheckpointLoaderSimple")->at("inputs")["ckpt_name"], "pony.safetensors");
    // Likeness: the avatar was uploaded once and the IPAdapter is fed exactly that file.
    auto uploads = comfy.uploads();
    ASSERT_EQ(uploads.size(), 1u);
    EXPECT_EQ(uploads.begin()->second, avatar);
    EXPECT_EQ(node_of(g, "LoadImage")->at("inputs")["image"], uploads.begin()->first);
    std::string ipadapter;
    for (const auto& [id, n] : g.items()) {
        if (n["class_type"] == "IPAdapter") ipadapter = id;
    }
    ASSERT_FALSE(ipadapter.empty());
    EXPECT_EQ(ks->at("inputs")["model"][0], ipadapter);
    EXPECT_EQ(comfy.ws_clients(), 1) << "progress must be followed on the WebSocket";

    // The picture is in the message (after a reload), in the media list, and served as a PNG.
    auto entries = image_entries(chat);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["status"], "done");
    EXPECT_EQ(entries[0]["url"], url);
    EXPECT_EQ(entries[0]["job"], job);
    EXPECT_EQ(entries[0]["prompt"], "sitting on a bed, red dress");
    auto img = server->client().Get(url.c_str());
    ASSERT_EQ(img->status, 200);
    EXPECT_EQ(img->get_header_value("Content-Type"), "image/png");
    EXPECT_TRUE(is_png(img->body));
    auto media = body_json(server->client().Get(("/api/characters/" + character_id + "/media").c_str()));
    bool listed = false;
    for (const auto& m : media["media"]) listed = listed || (m["kind"] == "image" && m["url"] == url);
    EXPECT_TRUE(listed) << media.dump();
    auto health = body_json(server->client().Get("/api/health"));
    EXPECT_EQ(health["components"]["image"]["state"], "ready") << health.dump();
}

TEST_F(ImageApi, CharacterLorasSeedAndSizeGoIntoTheGraphAndTheSendMePictureButtonAddsAMessage) {
    StandinComfyUi comfy;
    start("Okay.", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "sdxl.safetensors"}});
    Json c = {{"name", "Lena"}, {"appearance", "1girl, red hair"},
              {"extensions", {{"mycandy", {{"image", {{"seed", 1234}, {"width", 1024}, {"height", 1024}, {"steps", 12},
                                                      {"loras", {{{"name", "styles/a.safetensors"}, {"weight", 0.6}}, {{"name", "b.safetensors"}}}}}}}}}}};
    const std::string chat = new_chat(c);
    auto r = post("/api/images", {{"character_id", character_id}, {"prompt", "at the beach"}, {"chat_id", chat}});
    ASSERT_EQ(r->status, 202) << r->body;
    const std::string job = body_json(r)["job"]["id"];
    ASSERT_EQ(wait_job(job)["status"], "done");

    const Json g = comfy.prompts().at(0);
    EXPECT_EQ(node_of(g, "KSampler")->at("inputs")["seed"], 1234);
    EXPECT_EQ(node_of(g, "KSampler")->at("inputs")["steps"], 12);
    EXPECT_EQ(node_of(g, "EmptyLatentImage")->at("inputs")["width"], 1024);
    // No avatar: the built-in graph has no IPAdapter. The LoRAs are chained after the checkpoint
    // and everything that used the checkpoint's model and CLIP goes through them.
    EXPECT_EQ(node_of(g, "IPAdapter"), nullptr);
    std::vector<std::pair<std::string, Json>> loras;
    std::string ckpt;
    for (const auto& [id, n] : g.items()) {
        if (n["class_type"] == "LoraLoader") loras.emplace_back(id, n);
        if (n["class_type"] == "CheckpointLoaderSimple") ckpt = id;
    }
    ASSERT_EQ(loras.size(), 2u);
    const auto& first = loras[0].second["inputs"]["lora_name"] == "styles/a.safetensors" ? loras[0] : loras[1];
    const auto& second = &first == &loras[0] ? loras[1] : loras[0];
    EXPECT_EQ(first.second["inputs"]["model"][0], ckpt);
    EXPECT_EQ(first.second["inputs"]["strength_model"], 0.6);
    EXPECT_EQ(second.second["inputs"]["model"][0], first.first);
    EXPECT_EQ(node_of(g, "KSampler")->at("inputs")["model"][0], second.first);
    for (const auto& [id, n] : g.items()) {
        if (n["class_type"] == "CLIPTextEncode") {
            EXPECT_EQ(n["inputs"]["clip"][0], second.first);
        }
    }
    // The button's picture is a message of the character in that chat.
    auto entries = image_entries(chat);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["status"], "done");
    EXPECT_EQ(entries[0]["seed"], 1234);

    // A bad picture setting is refused when saved, naming the field.
    auto bad = server->client().Patch(("/api/characters/" + character_id).c_str(),
                                      Json{{"extensions", {{"mycandy", {{"image", {{"width", 1001}}}}}}}}.dump(), "application/json");
    EXPECT_EQ(bad->status, 400);
    EXPECT_EQ(body_json(bad)["error"]["field"], "extensions.mycandy.image.width");
    bad = server->client().Patch(("/api/characters/" + character_id).c_str(),
                                 Json{{"extensions", {{"mycandy", {{"image", {{"loras", {{{"name", "../../etc/passwd"}}}}}}}}}}}.dump(), "application/json");
    EXPECT_EQ(bad->status, 400);
}

TEST_F(ImageApi, ComfyUiDownFailsWithinTwoSecondsNamingTheUrlWhileTheReplyGoesOn) {
    const int dead = free_port();
    const std::string url = "http://127.0.0.1:" + std::to_string(dead);
    start("Look! [GENERATE_IMAGE] smiling\nThat's me.", {{"comfyui_url", url}});
    const std::string chat = new_chat();
    auto r = turn(chat);
    ASSERT_NE(r.last("done"), nullptr) << r.body;
    EXPECT_NE(r.text_of("token").find("That's me."), std::string::npos);
    const auto t0 = Clock::now();
    const Json job = wait_job(r.last("image")->data["job"]["id"]);
    EXPECT_LT(Clock::now() - t0, std::chrono::seconds(2));
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find(url), std::string::npos) << job.dump();
    auto entries = image_entries(chat);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["status"], "failed");
    EXPECT_NE(entries[0]["error"].get<std::string>().find(url), std::string::npos);
    auto health = body_json(server->client().Get("/api/health"));
    EXPECT_EQ(health["components"]["image"]["state"], "unavailable");
    EXPECT_NE(health["components"]["image"]["detail"].get<std::string>().find(url), std::string::npos);

    // Retry once ComfyUI is there: the same entry gets the new job and the picture.
    StandinComfyUi comfy;
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"media", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}}}}.dump(),
                                     "application/json")->status, 200);
    auto again = post("/api/images/" + job["id"].get<std::string>() + "/retry", Json::object());
    ASSERT_EQ(again->status, 202) << again->body;
    const std::string job2 = body_json(again)["job"]["id"];
    const Json done2 = wait_job(job2);
    ASSERT_EQ(done2["status"], "done") << done2.dump();
    entries = image_entries(chat);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["job"], job2);
    EXPECT_EQ(entries[0]["status"], "done");
    EXPECT_FALSE(entries[0].contains("error"));
    // Delete: gone from the message and from disk.
    const std::string file_url = entries[0]["url"];
    auto del = server->client().Delete(("/api/images/" + job2).c_str());
    ASSERT_EQ(del->status, 200) << del->body;
    EXPECT_TRUE(image_entries(chat).empty());
    EXPECT_EQ(server->client().Get(file_url.c_str())->status, 404);
}

TEST_F(ImageApi, MissingNodesErrorsWhileRunningAndNonImagesAreNamed) {
    StandinComfyUi::Options o;
    o.missing_nodes = {"IPAdapter", "IPAdapterUnifiedLoader"};
    StandinComfyUi no_ipadapter(o);
    start("[GENERATE_IMAGE] waving", {{"comfyui_url", no_ipadapter.url()}, {"image_checkpoint", "pony.safetensors"}});
    std::string chat = new_chat(Json{{"name", "Mia"}}, make_png(8, 8));
    auto health = body_json(server->client().Get("/api/health"))["components"]["image"];
    EXPECT_EQ(health["state"], "error");
    EXPECT_NE(health["detail"].get<std::string>().find("IPAdapter"), std::string::npos);
    EXPECT_NE(health["detail"].get<std::string>().find("ComfyUI_IPAdapter_plus"), std::string::npos) << health.dump();
    Json job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("IPAdapter"), std::string::npos) << job.dump();
    EXPECT_NE(job["error"].get<std::string>().find("not found"), std::string::npos) << job.dump();

    // Turning likeness off in the settings drops the IPAdapter nodes: the same server renders.
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"media", {{"image_likeness", false}}}}.dump(), "application/json")->status, 200);
    job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    EXPECT_EQ(job["status"], "done") << job.dump();

    StandinComfyUi::Options o2;
    o2.fail_in_sampler = true;
    StandinComfyUi failing(o2);
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"media", {{"comfyui_url", failing.url()}}}}.dump(), "application/json")->status, 200);
    job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("CUDA out of memory"), std::string::npos) << job.dump();
    EXPECT_NE(job["error"].get<std::string>().find("KSampler"), std::string::npos) << job.dump();

    StandinComfyUi::Options o3;
    o3.view_not_image = true;
    StandinComfyUi html(o3);
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"media", {{"comfyui_url", html.url()}}}}.dump(), "application/json")->status, 200);
    job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("not a PNG"), std::string::npos) << job.dump();

    // A checkpoint ComfyUI does not have: ComfyUI's own validation error, readable.
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"media", {{"comfyui_url", no_ipadapter.url()}, {"image_checkpoint", "nope.safetensors"}}}}.dump(),
                                     "application/json")->status, 200);
    job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("nope.safetensors"), std::string::npos) << job.dump();
    EXPECT_NE(job["error"].get<std::string>().find("CheckpointLoaderSimple"), std::string::npos) << job.dump();
}

TEST_F(ImageApi, APictureOverTheSizeLimitIsRefused) {
    StandinComfyUi::Options o;
    o.png_side = 700;  // About 1.4 MB uncompressed.
    StandinComfyUi comfy(o);
    start("[GENERATE_IMAGE] huge", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}, {"image_max_mb", 1}});
    const std::string chat = new_chat();
    const Json job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("larger than 1 MB"), std::string::npos) << job.dump();
    EXPECT_NE(job["error"].get<std::string>().find("media.image_max_mb"), std::string::npos) << job.dump();
}

TEST_F(ImageApi, WithoutAWebSocketTheClientPollsHistory) {
    StandinComfyUi::Options o;
    o.websocket = false;
    StandinComfyUi comfy(o);
    start("[GENERATE_IMAGE] reading a book", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}});
    const std::string chat = new_chat();
    const Json job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    EXPECT_EQ(job["status"], "done") << job.dump();
    EXPECT_EQ(comfy.ws_clients(), 0);
}

TEST_F(ImageApi, CancelInterruptsComfyUi) {
    StandinComfyUi::Options o;
    o.steps = 400;
    o.step_time = std::chrono::milliseconds(50);
    StandinComfyUi comfy(o);
    start("[GENERATE_IMAGE] dancing", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}});
    const std::string chat = new_chat();
    const std::string id = turn(chat).last("image")->data["job"]["id"];
    // Progress arrives while it runs.
    const auto deadline = Clock::now() + std::chrono::seconds(20);
    double progress = 0;
    while (progress <= 0.05 && Clock::now() < deadline) {
        progress = body_json(server->client().Get(("/api/jobs/" + id).c_str())).value("progress", 0.0);
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_GT(progress, 0.05);
    ASSERT_EQ(post("/api/jobs/" + id + "/cancel", Json::object())->status, 200);
    EXPECT_EQ(wait_job(id)["status"], "cancelled");
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (comfy.interrupts() == 0 && Clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    EXPECT_EQ(comfy.interrupts(), 1);
    // The job's row says "cancelled" at once; its message entry follows when the render returns.
    std::vector<Json> entries;
    const auto settle = Clock::now() + std::chrono::seconds(10);
    do {
        entries = image_entries(chat);
        if (entries.size() == 1 && entries[0]["status"] != "queued") break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (Clock::now() < settle);
    ASSERT_EQ(entries.size(), 1u);
    EXPECT_EQ(entries[0]["status"], "cancelled");
}

TEST_F(ImageApi, APictureWhoseMessageWasDeletedWhileItRenderedLeavesNoFile) {
    StandinComfyUi::Options o;
    o.steps = 20;
    o.step_time = std::chrono::milliseconds(50);
    StandinComfyUi comfy(o);
    start("[GENERATE_IMAGE] jumping", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}});
    const std::string chat = new_chat();
    auto r = turn(chat);
    const std::string id = r.last("image")->data["job"]["id"];
    const std::string message = r.last("done")->data["message"]["id"];
    ASSERT_EQ(server->client().Delete(("/api/messages/" + message).c_str())->status / 100, 2);
    const Json job = wait_job(id);
    EXPECT_EQ(job["status"], "failed");
    EXPECT_NE(job["error"].get<std::string>().find("deleted"), std::string::npos) << job.dump();
    const std::string dir = server->data_dir() + "/outputs/images";
    size_t files = 0;
    if (std::filesystem::exists(dir)) files = static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir), {}));
    EXPECT_EQ(files, 0u);
}

TEST_F(ImageApi, WorkflowsAreCheckedWhenSavedAndUsed) {
    StandinComfyUi comfy;
    start("[GENERATE_IMAGE] in the garden", {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}});
    auto put = [&](const std::string& name, const std::string& body) {
        return server->client().Put(("/api/images/workflows/" + name).c_str(), body, "application/json");
    };
    auto r = put("mine", "{not json");
    EXPECT_EQ(r->status, 400);
    r = put("mine", R"({"nodes":[],"links":[]})");
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(body_json(r)["error"]["message"].get<std::string>().find("API format"), std::string::npos) << r->body;
    r = put("mine", R"({"1":{"class_type":"SaveImage","inputs":{"images":["2",0]}}})");
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(body_json(r)["error"]["message"].get<std::string>().find("node 2"), std::string::npos) << r->body;
    r = put("mine", R"({"1":{"class_type":"CLIPTextEncode","inputs":{"text":"a cat"}}})");
    EXPECT_EQ(r->status, 400);
    EXPECT_NE(body_json(r)["error"]["message"].get<std::string>().find("%prompt%"), std::string::npos) << r->body;
    EXPECT_EQ(put("..%2F..%2Fetc", R"({})")->status / 100, 4);
    EXPECT_EQ(put("default", R"({})")->status / 100, 4);
    EXPECT_EQ(server->client().Delete("/api/images/workflows/default")->status, 409);

    // A person's own graph (here: the built-in one without likeness, with a different sampler).
    Json mine = {
        {"10", {{"class_type", "CheckpointLoaderSimple"}, {"inputs", {{"ckpt_name", "%model%"}}}}},
        {"11", {{"class_type", "EmptyLatentImage"}, {"inputs", {{"width", "%width%"}, {"height", "%height%"}, {"batch_size", 1}}}}},
        {"12", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", "masterpiece, %prompt%"}, {"clip", {"10", 1}}}}}},
        {"13", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", "%negative_prompt%"}, {"clip", {"10", 1}}}}}},
        {"14", {{"class_type", "KSampler"}, {"inputs", {{"seed", "%seed%"}, {"steps", 30}, {"cfg", "%scale%"}, {"sampler_name", "dpmpp_2m"},
                                                       {"scheduler", "karras"}, {"denoise", 1}, {"model", {"10", 0}}, {"positive", {"12", 0}},
                                                       {"negative", {"13", 0}}, {"latent_image", {"11", 0}}}}}},
        {"15", {{"class_type", "VAEDecode"}, {"inputs", {{"samples", {"14", 0}}, {"vae", {"10", 2}}}}}},
        {"16", {{"class_type", "SaveImage"}, {"inputs", {{"filename_prefix", "mine"}, {"images", {"15", 0}}}}}},
    };
    r = put("mine", mine.dump());
    ASSERT_EQ(r->status, 200) << r->body;
    auto list = body_json(server->client().Get("/api/images/workflows"));
    EXPECT_EQ(list["workflows"], Json::array({"default", "mine"}));
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"media", {{"image_workflow", "mine"}}}}.dump(), "application/json")->status, 200);
    const std::string chat = new_chat(Json{{"name", "Mia"}, {"appearance", "1girl"}});
    const Json job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    ASSERT_EQ(job["status"], "done") << job.dump();
    const Json g = comfy.prompts().back();
    EXPECT_EQ(g["14"]["inputs"]["sampler_name"], "dpmpp_2m");
    EXPECT_EQ(g["12"]["inputs"]["text"], "masterpiece, score_9, score_8_up, score_7_up, 1girl, in the garden");
    EXPECT_EQ(g["10"]["inputs"]["ckpt_name"], "pony.safetensors");
    EXPECT_EQ(server->client().Delete("/api/images/workflows/mine")->status, 200);
}

TEST_F(ImageApi, PromptsAreCheckedAndTagsTolerated) {
    StandinComfyUi comfy;
    // Twice in one reply, mid-line, and once with nothing after it.
    start("So [GENERATE_IMAGE] first picture\nand [GENERATE_IMAGE]\n[GENERATE_IMAGE] second picture",
          {{"comfyui_url", comfy.url()}, {"image_checkpoint", "pony.safetensors"}});
    const std::string chat = new_chat();
    auto r = turn(chat);
    ASSERT_EQ(r.count("image"), 2u);
    std::vector<std::string> prompts;
    for (const auto& e : r.events) {
        if (e.event == "image") prompts.push_back(e.data["prompt"]);
    }
    EXPECT_EQ(prompts, (std::vector<std::string>{"first picture", "second picture"}));
    EXPECT_EQ(r.text_of("token").find("GENERATE"), std::string::npos);

    auto big = post("/api/images", {{"character_id", character_id}, {"prompt", std::string(100000, 'a')}});
    EXPECT_EQ(big->status, 413);
    EXPECT_EQ(body_json(big)["error"]["field"], "prompt");
    EXPECT_EQ(post("/api/images", {{"character_id", character_id}, {"prompt", " \x01\t "}})->status, 400);
    EXPECT_EQ(post("/api/images", {{"character_id", "nope"}, {"prompt", "x"}})->status, 404);
    EXPECT_EQ(post("/api/images", {{"character_id", character_id}, {"prompt", 5}})->status, 400);
    auto ok = post("/api/images", {{"character_id", character_id}, {"prompt", "a\x01" "b\x1b[31m  c"}});
    ASSERT_EQ(ok->status, 202) << ok->body;
    EXPECT_EQ(wait_job(body_json(ok)["job"]["id"])["result"]["prompt"], "a b [31m c");

    // The model is told how to ask (English, or German with ui.language de); off removes the
    // instruction and ignores tags (still never shown).
    auto prompt_text = [&] { return body_json(server->client().Get(("/api/chats/" + chat + "/prompt").c_str()))["text"].get<std::string>(); };
    EXPECT_NE(prompt_text().find("[GENERATE_IMAGE]"), std::string::npos);
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"ui", {{"language", "de"}}}}.dump(), "application/json")->status, 200);
    EXPECT_NE(prompt_text().find("Bilder von sich"), std::string::npos);
    ASSERT_EQ(server->client().Patch("/api/settings", Json{{"media", {{"image_instruct", false}}}}.dump(), "application/json")->status, 200);
    EXPECT_EQ(prompt_text().find("GENERATE_IMAGE"), std::string::npos);
    r = turn(chat);
    EXPECT_EQ(r.count("image"), 0u);
    EXPECT_EQ(r.text_of("token").find("GENERATE"), std::string::npos);
}

std::string b64(const std::string& in) {
    std::string out(4 * ((in.size() + 2) / 3), '\0');
    out.resize(static_cast<size_t>(EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                                   reinterpret_cast<const unsigned char*>(in.data()), static_cast<int>(in.size()))));
    return out;
}

TEST_F(ImageApi, A1111StyleServer) {
    // A stand-in AUTOMATIC1111/Forge API: txt2img answers base64 pictures.
    httplib::Server a1111;
    std::mutex mu;
    Json asked;
    a1111.Post("/sdapi/v1/txt2img", [&](const httplib::Request& req, httplib::Response& res) {
        {
            std::lock_guard lock(mu);
            asked = Json::parse(req.body);
        }
        res.set_content(Json{{"images", {b64(make_png(32, 48))}}, {"parameters", Json::object()}, {"info", "{}"}}.dump(), "application/json");
    });
    a1111.Get("/sdapi/v1/progress", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(R"({"progress":0.5,"eta_relative":1.0})", "application/json");
    });
    a1111.Get("/sdapi/v1/sd-models", [](const httplib::Request&, httplib::Response& res) {
        res.set_content(R"([{"title":"pony.safetensors [abc123]","model_name":"pony"}])", "application/json");
    });
    const int port = a1111.bind_to_any_port("127.0.0.1");
    std::thread t([&] { a1111.listen_after_bind(); });
    start("[GENERATE_IMAGE] on a swing", {{"image_backend", "a1111"}, {"a1111_url", "http://127.0.0.1:" + std::to_string(port)},
                                          {"image_checkpoint", "pony.safetensors"}});
    Json c = {{"name", "Ada"}, {"appearance", "1girl"},
              {"extensions", {{"mycandy", {{"image", {{"seed", 77}, {"loras", {{{"name", "freckles.safetensors"}, {"weight", 0.5}}}}}}}}}}};
    const std::string chat = new_chat(c);
    const Json job = wait_job(turn(chat).last("image")->data["job"]["id"]);
    ASSERT_EQ(job["status"], "done") << job.dump();
    {
        std::lock_guard lock(mu);
        EXPECT_EQ(asked["seed"], 77);
        EXPECT_EQ(asked["width"], 832);
        EXPECT_EQ(asked["prompt"], "score_9, score_8_up, score_7_up, 1girl, on a swing <lora:freckles:0.5>");
        EXPECT_EQ(asked["override_settings"]["sd_model_checkpoint"], "pony.safetensors");
    }
    auto img = server->client().Get(job["result"]["url"].get<std::string>().c_str());
    EXPECT_TRUE(is_png(img->body));
    EXPECT_EQ(body_json(server->client().Get("/api/health"))["components"]["image"]["state"], "ready");
    a1111.stop();
    t.join();
}

}  // namespace
}  // namespace mc::test

// Workflow templates: placeholders filled by type, words of a prompt never read as placeholders or
// structure, LoRAs chained, and the checks a saved template must pass.
#include <gtest/gtest.h>

#include "image/image_service.hpp"
#include "image/workflow.hpp"

namespace mc::image {
namespace {

ImageParams params() {
    ImageParams p;
    p.prompt = "1girl, \"quoted\" %seed% %negative_prompt% {\"x\":1}";
    p.negative_prompt = "lowres";
    p.seed = 42;
    p.width = 1024;
    p.height = 768;
    p.steps = 20;
    p.scale = 6.5;
    p.checkpoint = "pony.safetensors";
    p.reference_image = "mycandy/a.png";
    return p;
}

TEST(Workflow, DefaultGraphIsFilledWithTypedValuesAndThePromptStaysWords) {
    auto g = fill_workflow(default_workflow(true), params());
    ASSERT_TRUE(g.has_value()) << g.error().message;
    const Json& ks = (*g)["3"]["inputs"];
    EXPECT_EQ(ks["seed"], 42);
    EXPECT_EQ(ks["steps"], 20);
    EXPECT_EQ(ks["cfg"], 6.5);
    EXPECT_EQ(ks["model"], Json::array({"12", 0}));
    EXPECT_EQ((*g)["5"]["inputs"]["width"], 1024);
    // The prompt's own "%seed%" and braces are text, not placeholders or JSON.
    EXPECT_EQ((*g)["6"]["inputs"]["text"], params().prompt);
    EXPECT_EQ((*g)["7"]["inputs"]["text"], "lowres");
    EXPECT_EQ((*g)["10"]["inputs"]["image"], "mycandy/a.png");
    EXPECT_EQ((*g)["12"]["inputs"]["weight"], 0.7);
    EXPECT_EQ(g->dump().find("%checkpoint%"), std::string::npos);
}

TEST(Workflow, LorasAreChainedAfterTheCheckpoint) {
    ImageParams p = params();
    p.loras = {{"a.safetensors", 0.5}, {"b.safetensors", 1.0}};
    auto g = fill_workflow(default_workflow(false), p);
    ASSERT_TRUE(g.has_value());
    // Ids after the largest numeric one.
    ASSERT_TRUE(g->contains("10") && g->contains("11"));
    EXPECT_EQ((*g)["10"]["inputs"]["model"], Json::array({"4", 0}));
    EXPECT_EQ((*g)["10"]["inputs"]["lora_name"], "a.safetensors");
    EXPECT_EQ((*g)["11"]["inputs"]["clip"], Json::array({"10", 1}));
    EXPECT_EQ((*g)["3"]["inputs"]["model"], Json::array({"11", 0}));
    EXPECT_EQ((*g)["6"]["inputs"]["clip"], Json::array({"11", 1}));
    EXPECT_EQ((*g)["8"]["inputs"]["vae"], Json::array({"4", 2}));  // The VAE still comes from the checkpoint.

    Json no_ckpt = {{"1", {{"class_type", "CLIPTextEncode"}, {"inputs", {{"text", "%prompt%"}}}}}};
    EXPECT_FALSE(fill_workflow(no_ckpt, p).has_value());
}

TEST(Workflow, ChecksNameWhatIsWrong) {
    EXPECT_FALSE(validate_workflow(Json::array()).has_value());
    EXPECT_NE(validate_workflow(Json{{"nodes", Json::array()}, {"links", Json::array()}}).error().message.find("API format"), std::string::npos);
    EXPECT_NE(validate_workflow(Json{{"1", {{"inputs", Json::object()}}}}).error().message.find("class_type"), std::string::npos);
    EXPECT_NE(validate_workflow(Json{{"1", {{"class_type", "X"}, {"inputs", {{"a", {"9", 0}}, {"t", "%prompt%"}}}}}}).error().message.find("node 9"),
              std::string::npos);
    EXPECT_NE(validate_workflow(Json{{"1", {{"class_type", "X"}, {"inputs", {{"t", "cat"}}}}}}).error().message.find("%prompt%"), std::string::npos);
    EXPECT_TRUE(validate_workflow(default_workflow(true)).has_value());
    // A template needing the avatar without one.
    ImageParams p = params();
    p.reference_image.clear();
    EXPECT_FALSE(fill_workflow(default_workflow(true), p).has_value());
}

TEST(Workflow, CharacterPictureSettingsAreRangeChecked) {
    auto ok = character_image_from_extensions(Json{{"mycandy", {{"image", {{"seed", 5}, {"width", 512}, {"loras", {{{"name", "x/y.safetensors"}}}}}}}}});
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(*ok->seed, 5);
    EXPECT_EQ(ok->loras.at(0).weight, 0.8);
    EXPECT_FALSE(character_image_from_extensions(Json{{"other", 1}}).value().seed.has_value());
    for (const Json& bad : {Json{{"width", 513}}, Json{{"width", 4096}}, Json{{"steps", 0}}, Json{{"seed", -2}},
                            Json{{"seed", 1.5}}, Json{{"loras", {{{"name", "../x"}}}}}, Json{{"loras", {{{"name", "/etc/x"}}}}},
                            Json{{"loras", {{{"name", "a"}, {"weight", 99}}}}}, Json{{"likeness", "yes"}}, Json{{"colour", 1}}}) {
        auto r = character_image_from_extensions(Json{{"mycandy", {{"image", bad}}}});
        EXPECT_FALSE(r.has_value()) << bad.dump();
        if (!r) {
            EXPECT_EQ(r.error().field.rfind("extensions.mycandy.image.", 0), 0u) << r.error().field;
        }
    }
    EXPECT_EQ(clean_prompt("a\nb\t\x01  c ", 100).value(), "a b c");
    EXPECT_EQ(clean_prompt(std::string(101, 'x'), 100).error().code, ErrorCode::TooLarge);
}

}  // namespace
}  // namespace mc::image

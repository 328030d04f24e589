// voice/rvc below the HTTP layer: command templates become argument lists without a shell, and a
// trainer's output lines give its progress.
#include <gtest/gtest.h>

#include "voice/rvc.hpp"

namespace mc::voice {
namespace {

TEST(RvcCommand, TemplatesSplitAtSpacesKeepQuotedSpacesAndFillEachArgument) {
    auto args = split_command(R"(python3  "my tools/train.py" --sample {sample} --tag="a \"b\"" x{epochs}y)", "f");
    ASSERT_TRUE(args) << args.error().message;
    EXPECT_EQ(*args, (std::vector<std::string>{"python3", "my tools/train.py", "--sample", "{sample}", "--tag=a \"b\"", "x{epochs}y"}));
    auto filled = fill_command(*args, {{"sample", "/data/a b;$(id).wav"}, {"epochs", "20"}}, "f");
    ASSERT_TRUE(filled);
    EXPECT_EQ((*filled)[3], "/data/a b;$(id).wav");  // One argument, never interpreted.
    EXPECT_EQ((*filled)[5], "x20y");
    auto unknown = fill_command({"{sampel}"}, {{"sample", "x"}}, "media.vc_train_command");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().field, "media.vc_train_command");
    EXPECT_NE(unknown.error().message.find("{sampel}"), std::string::npos);
    EXPECT_FALSE(split_command("train \"unclosed", "f"));
    EXPECT_FALSE(split_command("   ", "f"));
}

TEST(RvcProgress, EpochsPercentAndFractionsAreRead) {
    EXPECT_DOUBLE_EQ(*training_progress("Epoch 3/20 loss=0.25"), 0.15);
    EXPECT_DOUBLE_EQ(*training_progress("[train] epoch: 5 / 10"), 0.5);
    EXPECT_DOUBLE_EQ(*training_progress("EPOCHS 2 of 8"), 0.25);
    EXPECT_DOUBLE_EQ(*training_progress("45%|#####     | 45/100"), 0.45);
    EXPECT_DOUBLE_EQ(*training_progress("done 12.5 %"), 0.125);
    EXPECT_DOUBLE_EQ(*training_progress("progress: 0.4"), 0.4);
    EXPECT_DOUBLE_EQ(*training_progress("Progress=80"), 0.8);
    EXPECT_FALSE(training_progress("loss 0.25, lr 1e-4"));
    EXPECT_FALSE(training_progress("epoch 30/20"));  // Impossible: ignored.
    EXPECT_FALSE(training_progress("250%"));
    EXPECT_FALSE(training_progress(std::string(5000, '9') + "%"));
    EXPECT_FALSE(training_progress(""));
}

}  // namespace
}  // namespace mc::voice

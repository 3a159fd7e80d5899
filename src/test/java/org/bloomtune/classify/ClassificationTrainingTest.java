package org.bloomtune.classify;

import org.bloomtune.Reference;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.LrSchedule;
import org.bloomtune.train.TrainConfig;
import org.bloomtune.train.TrainingListener;
import org.bloomtune.train.Trainer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** The trainer with the verbalizer objective fits the soft prompt to a handful of real reviews. */
class ClassificationTrainingTest {
    @TempDir
    Path dir;

    @Test
    void promptTuningFitsTheLabelsOfASmallSet() {
        Path model = Path.of("models/bloom-tiny");
        Tokenizer tok = Tokenizer.load(model.resolve("tokenizer.json"));
        Verbalizer v = Verbalizer.load(Path.of("models/verbalizers/sentiment-zh.json"));
        List<ClassifyRecord> records = ClassifyReader.read(Reference.chnSentiCorpTrain(), true)
                .subList(0, 12);
        TrainConfig config = TrainConfig.builder().output(dir).epochs(0).maxSteps(60).batchSize(12).lr(0.1)
                .schedule(LrSchedule.Decay.CONSTANT).checkpointEvery(1000).seed(1).build();
        try (BloomModel m = BloomModel.load(model); SoftPrompt prompt = SoftPrompt.random(10, 128, 1)) {
            LabelWords words = LabelWords.encode(v, tok, m.config().vocabSize());
            ClassifyEncoder encoder = new ClassifyEncoder(tok, words, 96);
            List<ClassifyExample> data = records.stream().map(encoder::encode).toList();
            ClassificationTask task = new ClassificationTask(m, words);
            ClassificationTask.Result before = task.score(prompt, data, 12);
            new Trainer<>(task, config, AdapterConfig.forModel(m.config(), 10, PromptInit.RANDOM, null, "bloom-tiny"),
                    TrainingListener.SILENT).train(prompt, data, List.of(), org.bloomtune.train.RunMode.NEW);
            ClassificationTask.Result after = task.score(prompt, data, 12);
            System.out.printf("12 reviews: loss %.3f -> %.3f, accuracy %.3f -> %.3f%n", before.loss(), after.loss(),
                    before.metrics().accuracy(), after.metrics().accuracy());
            assertTrue(after.loss() < 0.5 * before.loss(), "loss " + before.loss() + " -> " + after.loss());
            assertTrue(after.metrics().accuracy() >= 10 / 12.0, "accuracy " + after.metrics().accuracy());
        }
    }
}

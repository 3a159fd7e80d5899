package org.bloomtune.cli;

import org.bloomtune.classify.ClassificationMetrics;
import org.bloomtune.classify.ClassificationTask;
import org.bloomtune.classify.ClassifyEncoder;
import org.bloomtune.classify.ClassifyExample;
import org.bloomtune.classify.ClassifyReader;
import org.bloomtune.classify.ClassifyRecord;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.TrainConfig;
import org.bloomtune.train.Trainer;

import java.util.List;
import java.util.Locale;

/**
 * {@code train --task classify}: prompt tuning against a verbalizer, then a report of train and
 * eval accuracy beside the majority-class baseline. The verbalizer is saved beside the adapter, so
 * {@code classify --adapter} and a prompt bank know the task without being told again.
 */
final class ClassifierTraining {
    private final TrainCommand options;

    ClassifierTraining(TrainCommand options) {
        this.options = options;
    }

    void run() {
        if (options.verbalizer == null) throw new IllegalArgumentException("--task classify needs --verbalizer");
        TrainConfig config = options.config();
        Verbalizer verbalizer = Verbalizer.fromArgument(options.verbalizer);
        Tokenizer tok = options.tokenizer();
        TrainCommand.Split<ClassifyRecord> records = options.split(ClassifyReader.read(options.data, true),
                () -> ClassifyReader.read(options.evalData, true));
        options.checkMemory();
        try (BloomModel model = options.modelOptions.load()) {
            LabelWords words = LabelWords.encode(verbalizer, tok, model.config().vocabSize());
            ClassifyEncoder encoder = new ClassifyEncoder(tok, words, options.maxLength);
            List<ClassifyExample> train = records.train().stream().map(encoder::encode).toList();     // unknown labels fail here
            List<ClassifyExample> eval = records.eval().stream().map(encoder::encode).toList();
            ClassificationTask task = new ClassificationTask(model, words);
            try (SoftPrompt prompt = options.initialPrompt(model, tok)) {
                Trainer.Summary s = new Trainer<>(task, config, options.adapterConfig(model, train.size(), eval.size()), System.out)
                        .train(prompt, train, eval, options.runMode());
                AtomicFiles.writeString(s.adapter().resolve(Verbalizer.FILE), verbalizer.toJson());
                report(task, prompt, train, eval, config.batchSize());
                System.out.printf("done: %d steps; adapter %s (with %s), loss curve %s%n", s.steps(), s.adapter(), Verbalizer.FILE,
                        options.output.resolve("loss.png"));
            }
        }
    }

    private static void report(ClassificationTask task, SoftPrompt prompt, List<ClassifyExample> train, List<ClassifyExample> eval, int batch) {
        ClassificationMetrics onTrain = task.score(prompt, train, Math.max(batch, 16)).metrics();
        System.out.printf(Locale.ROOT, "train: %s (majority class %.4f)%n", onTrain.summary(), onTrain.majorityAccuracy(onTrain));
        if (eval.isEmpty()) return;
        ClassificationMetrics onEval = task.score(prompt, eval, Math.max(batch, 16)).metrics();
        System.out.printf(Locale.ROOT, "eval:  %s (majority class of train: %.4f)%n%s", onEval.summary(),
                onEval.majorityAccuracy(onTrain), onEval.confusionTable());
    }
}

package org.bloomtune.examples;

import org.bloomtune.PromptTuning;
import org.bloomtune.Tasks;
import org.bloomtune.TrainedPrompt;
import org.bloomtune.classify.Classifier;
import org.bloomtune.classify.ClassifyEncoder;
import org.bloomtune.classify.ClassifyReader;
import org.bloomtune.classify.ClassifyRecord;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Prediction;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.TrainConfig;

import java.nio.file.Path;
import java.util.List;

/** Train a sentiment classifier through a verbalizer (积极→好, 消极→差), then classify two reviews. */
public final class ClassifyReviews {
    public static void main(String[] args) {
        Path out = Path.of(args.length > 0 ? args[0] : "out/examples/classify-reviews");
        Path modelDir = Path.of("models/bloom-tiny");
        Verbalizer verbalizer = Verbalizer.load(Path.of("models/verbalizers/sentiment-zh.json"));
        List<ClassifyRecord> reviews = ClassifyReader.read(Path.of("models/demo-data/chnsenticorp_train_first2000.tsv"), true);
        Tokenizer tokenizer = Tokenizer.load(modelDir.resolve("tokenizer.json"));
        try (BloomModel model = BloomModel.load(modelDir)) {
            TrainedPrompt result = PromptTuning.of(model)
                    .tokenizer(tokenizer)
                    .virtualTokens(10)
                    .task(Tasks.classification(reviews.subList(0, 64), verbalizer).maxLength(96).evalSplit(0.25))
                    .config(TrainConfig.builder().lr(3e-2).maxSteps(8).batchSize(8).build())
                    .train(out);
            System.out.println(result.report());

            LabelWords words = LabelWords.encode(verbalizer, tokenizer, model.config().vocabSize());
            ClassifyEncoder encoder = new ClassifyEncoder(tokenizer, words, 96);
            try (PeftAdapter.Loaded adapter = PeftAdapter.load(result.adapter(), model.config())) {
                List<Prediction> predictions = new Classifier(model).predict(adapter.prompt(),
                        List.of(encoder.ids("房间干净，服务热情，下次还来"), encoder.ids("设施陈旧，早餐很差")), words);
                for (Prediction p : predictions) System.out.println(p.labelName() + " " + p.probabilitiesJson());
            }
        }
    }
}

package org.bloomtune.examples;

import org.bloomtune.PromptTuning;
import org.bloomtune.Tasks;
import org.bloomtune.TrainedPrompt;
import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.AlpacaRecord;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptedGeneration;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.TrainConfig;
import org.bloomtune.train.TrainingListener;

import java.nio.file.Path;
import java.util.List;

/** Prompt-tune the embedded model on Alpaca records, then answer a question with the adapter. */
public final class TuneAndGenerate {
    public static void main(String[] args) {
        Path out = Path.of(args.length > 0 ? args[0] : "out/examples/tune-and-generate");
        Path modelDir = Path.of("models/bloom-tiny");
        List<AlpacaRecord> records = AlpacaReader.read(Path.of("models/demo-data/alpaca_zh_demo_first300.json"), false).records();
        Tokenizer tokenizer = Tokenizer.load(modelDir.resolve("tokenizer.json"));
        try (BloomModel model = BloomModel.load(modelDir)) {
            TrainedPrompt result = PromptTuning.of(model)
                    .tokenizer(tokenizer)
                    .virtualTokens(10).initText("这是一段人与助手的对话：")
                    .task(Tasks.instructions(records.subList(0, 40)).maxLength(128).evalSplit(0.1))
                    .config(TrainConfig.builder().lr(3e-3).maxSteps(6).batchSize(4).build())
                    .listener(TrainingListener.console(System.out))
                    .train(out);
            System.out.println("adapter: " + result.adapter() + ", eval loss " + result.evaluation().loss());

            long[] question = tokenizer.encode(PromptTemplate.SEED.prompt("如何缓解压力？"));
            try (PeftAdapter.Loaded adapter = PeftAdapter.load(result.adapter(), model.config())) {
                GenerationResult answer = PromptedGeneration.generate(model, adapter.prompt(), List.of(question),
                        GenerationConfig.greedy(20, model.config().eosTokenId()), (row, token) -> { });
                System.out.println(tokenizer.decode(answer.row(0), true));
            }
        }
    }
}

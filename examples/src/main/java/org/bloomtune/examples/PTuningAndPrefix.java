package org.bloomtune.examples;

import org.bloomtune.PromptTuning;
import org.bloomtune.Tasks;
import org.bloomtune.TrainedPrompt;
import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.AlpacaRecord;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.EncoderType;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptedGeneration;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.TrainConfig;

import java.nio.file.Path;
import java.util.List;

/** The other two members of the family: P-tuning through an LSTM encoder, and prefix tuning with a projection. */
public final class PTuningAndPrefix {
    public static void main(String[] args) {
        Path out = Path.of(args.length > 0 ? args[0] : "out/examples/p-tuning-and-prefix");
        Path modelDir = Path.of("models/bloom-tiny");
        List<AlpacaRecord> records = AlpacaReader.read(Path.of("models/demo-data/alpaca_zh_demo_first300.json"), false).records();
        Tokenizer tokenizer = Tokenizer.load(modelDir.resolve("tokenizer.json"));
        try (BloomModel model = BloomModel.load(modelDir)) {
            PromptTuning pTuning = PromptTuning.of(model).peftType(PeftType.P_TUNING).encoderType(EncoderType.LSTM).encoderHiddenSize(64);
            PromptTuning prefix = PromptTuning.of(model).peftType(PeftType.PREFIX_TUNING).prefixProjection(true).encoderHiddenSize(64);
            long[] question = tokenizer.encode(PromptTemplate.SEED.prompt("如何缓解压力？"));
            for (PromptTuning tuning : List.of(pTuning, prefix)) {
                String name = tuning.adapterConfig().peftType().flag();
                TrainedPrompt result = tuning.tokenizer(tokenizer).virtualTokens(10)
                        .task(Tasks.instructions(records.subList(0, 40)).maxLength(128).evalSplit(0.1))
                        .config(TrainConfig.builder().lr(3e-2).maxSteps(6).batchSize(4).build())
                        .train(out.resolve(name));
                // PEFT's two files (prompt_embeddings = the encoder's output) plus prompt_encoder.safetensors
                try (PeftAdapter.Loaded adapter = PeftAdapter.loadFolded(result.adapter(), model.config())) {
                    long[] answer = PromptedGeneration.generate(model, adapter.prompt(), List.of(question),
                            GenerationConfig.greedy(12, model.config().eosTokenId()), (row, token) -> { }).row(0);
                    System.out.printf("%s: eval loss %.4f, %s%n", name, result.evaluation().loss(), tokenizer.decode(answer, true));
                }
            }
        }
    }
}

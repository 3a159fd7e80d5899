package org.bloomtune.cli;

import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.Example;
import org.bloomtune.data.ExampleEncoder;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.DType;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.demo.Pretrainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.List;

/** Trains every weight of a small model on Alpaca text: how the embedded default demo model is made. */
@Command(name = "pretrain", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = "Full-parameter LM training of a small BLOOM (all tokens labelled) on Alpaca data; rewrites "
                + "MODEL/model.safetensors in --storage dtype. Tooling for the embedded demo model, not prompt tuning.")
final class PretrainCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--data", required = true, paramLabel = "FILE", description = "Alpaca JSON or JSONL to train on") Path data;
    @Option(names = "--epochs", defaultValue = "8", paramLabel = "E", description = "passes over the data") int epochs;
    @Option(names = "--batch-size", defaultValue = "8", paramLabel = "B", description = "examples per step") int batchSize;
    @Option(names = "--lr", defaultValue = "3e-3", paramLabel = "LR", description = "AdamW learning rate") double lr;
    @Option(names = "--max-length", defaultValue = "256", paramLabel = "N", description = "tokens per example; longer ones are cut") int maxLength;
    @Option(names = "--storage", defaultValue = "fp16", paramLabel = "fp32|fp16|bf16", description = "dtype of the rewritten model.safetensors") String storage;
    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "data order") long seed;
    @Option(names = "--template", defaultValue = "{instruction}\\n{input}\\n{output}", paramLabel = "T",
            description = "how records become text: plain, so the seed's Human/Assistant format is left for the prompt to learn")
    String template;

    @Override
    public void run() {
        if (epochs < 1 || batchSize < 1 || !(lr > 0)) throw new IllegalArgumentException("--epochs, --batch-size and --lr must be positive");
        Tokenizer tok = Tokenizer.load(modelOptions.dir().resolve("tokenizer.json"));
        var records = AlpacaReader.read(data, false).records();
        try (BloomModel model = modelOptions.load()) {
            ExampleEncoder encoder = new ExampleEncoder(tok, new PromptTemplate(template.replace("\\n", "\n")), maxLength, model.config().eosTokenId(), true);
            List<Example> examples = records.stream().map(encoder::encode).toList();
            double loss = Pretrainer.train(model, examples, epochs, batchSize, lr, seed, System.out);
            Pretrainer.save(model, modelOptions.dir(), DType.parseCompute(storage));
            System.out.printf("wrote %s (final epoch loss %.4f)%n", modelOptions.dir().resolve("model.safetensors"), loss);
        }
    }
}

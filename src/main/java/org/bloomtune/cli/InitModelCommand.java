package org.bloomtune.cli;

import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.ModelShapes;
import org.bloomtune.model.RandomCheckpoint;
import org.bloomtune.tensor.DType;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** Writes a seeded random BLOOM in HuggingFace layout, for tests, benchmarks and the demo. */
@Command(name = "init-model", mixinStandardHelpOptions = true,
        description = "Write a seeded random BLOOM checkpoint (config.json, model.safetensors, "
                + "generation_config.json) in HuggingFace layout.")
final class InitModelCommand implements Runnable {

    static final class Shape {
        @Option(names = "--like", paramLabel = "NAME",
                description = "a named shape: tiny, bloom-560m, bloom-1b1, bloom-1b4-zh, bloom-1b7")
        String like;

        @Option(names = "--config", paramLabel = "config.json", description = "a HuggingFace BLOOM config")
        Path config;
    }

    @ArgGroup(exclusive = true, multiplicity = "1")
    Shape shape;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "directory to write")
    Path output;

    @Option(names = "--dtype", defaultValue = "fp32", paramLabel = "fp32|bf16|fp16", description = "storage dtype (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "random seed (default: ${DEFAULT-VALUE})")
    long seed;

    @Option(names = "--init-std", defaultValue = "0.02", paramLabel = "STD",
            description = "std of the random matrices (default: HF's ${DEFAULT-VALUE})")
    double initStd;

    @Override
    public void run() {
        BloomConfig config = shape.like != null ? ModelShapes.named(shape.like) : BloomConfig.read(shape.config);
        RandomCheckpoint.write(config, output, DType.parseCompute(dtype), seed, initStd);
        System.out.printf("wrote %s: %d layers, hidden %d, %d heads, vocab %d, %,d parameters%n", output,
                config.numLayers(), config.hiddenSize(), config.numHeads(), config.vocabSize(), config.parameterCount());
    }
}

package org.bloomtune.cli;

import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.model.MemoryEstimate;
import org.bloomtune.model.ModelShapes;
import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.tensor.DType;
import picocli.CommandLine.ArgGroup;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;

/** Writes a seeded random BLOOM in HuggingFace layout, for tests, benchmarks and the demo. */
@Command(name = "init-model", mixinStandardHelpOptions = true, showDefaultValues = true,
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

    @Option(names = "--storage", defaultValue = "fp32", paramLabel = "fp32|bf16|fp16", description = "dtype of the weights in the file")
    String storage;

    @Option(names = "--overwrite", description = "replace a model already in --output")
    boolean overwrite;

    @Option(names = "--seed", defaultValue = "0", paramLabel = "S", description = "random seed")
    long seed;

    @Option(names = "--init-std", defaultValue = "0.02", paramLabel = "STD",
            description = "std of the random matrices (default: HF's ${DEFAULT-VALUE})")
    double initStd;

    private static long freeDisk(Path dir) {
        try {
            Path existing = dir.toAbsolutePath();
            while (existing != null && !Files.exists(existing)) existing = existing.getParent();
            return existing == null ? Long.MAX_VALUE : Files.getFileStore(existing).getUsableSpace();
        } catch (java.io.IOException e) {
            return Long.MAX_VALUE;   // unknown: let the write report its own error
        }
    }

    @Override
    public void run() {
        BloomConfig config = shape.like != null ? ModelShapes.named(shape.like) : BloomConfig.read(shape.config);
        DType dtype = DType.parseCompute(storage);
        if (!(initStd > 0) || !Double.isFinite(initStd)) throw new IllegalArgumentException("--init-std must be a positive number, got " + initStd);
        if (!overwrite && Files.exists(output.resolve(HfCheckpoint.CONFIG))) {
            throw new IllegalArgumentException(output + " already holds a model (" + HfCheckpoint.CONFIG + "); pass --overwrite to replace it");
        }
        long bytes = config.parameterCount() * dtype.byteSize();
        long free = freeDisk(output);
        if (bytes > free) {
            throw new IllegalArgumentException("the model needs " + MemoryEstimate.size(bytes) + " on disk but " + output + " has "
                    + MemoryEstimate.size(free) + " free");
        }
        MemoryEstimate.forward(config, LoadOptions.defaults().withDtype(dtype), 1, 1)
                .requireFits("writing a model of " + String.format("%,d", config.parameterCount()) + " parameters", "the model's size");
        RandomCheckpoint.write(config, output, dtype, seed, initStd);
        System.out.printf("wrote %s: %d layers, hidden %d, %d heads, vocab %d, %,d parameters%n", output,
                config.numLayers(), config.hiddenSize(), config.numHeads(), config.vocabSize(), config.parameterCount());
    }
}

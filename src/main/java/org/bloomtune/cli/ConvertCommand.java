package org.bloomtune.cli;

import org.bloomtune.hub.HubOptions;
import org.bloomtune.hub.ModelLocation;
import org.bloomtune.io.CheckpointConverter;
import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.tensor.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/** Rewrites a checkpoint as (sharded) safetensors in transformers' layout. */
@Command(name = "convert", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = {"Rewrite a HuggingFace BLOOM checkpoint (safetensors, pytorch_model.bin, either sharded) as safetensors the way "
                + "save_pretrained writes them: {\"format\": \"pt\"} metadata, model.safetensors or model-0000K-of-0000N.safetensors "
                + "with model.safetensors.index.json past --shard-size, a tied lm_head.weight dropped; config, tokenizer and "
                + "generation files copied."})
final class ConvertCommand implements Runnable {
    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME", description = "the checkpoint: a directory or a hub id")
    String model;

    @Option(names = "--revision", paramLabel = "REV", description = "for a hub id: branch, tag or commit (default: main)")
    String revision;

    @Option(names = "--output", required = true, paramLabel = "DIR", description = "directory to write")
    Path output;

    @Option(names = {"--storage", "--dtype"}, paramLabel = "fp32|fp16|bf16", description = "dtype of the written weights (default: each tensor's own)")
    String storage;

    @Option(names = "--shard-size", defaultValue = "2GB", paramLabel = "SIZE", description = "largest shard, e.g. 2GB, 500MB, 10GiB")
    String shardSize;

    @Option(names = "--overwrite", description = "replace a model already in --output")
    boolean overwrite;

    @Override
    public void run() {
        DType dtype = storage == null ? null : DType.parseCompute(storage);
        long shard = Flags.size(shardSize, "--shard-size");
        if (!overwrite && Files.exists(output.resolve(HfCheckpoint.CONFIG))) {
            throw new IllegalArgumentException(output + " already holds a model (" + HfCheckpoint.CONFIG + "); pass --overwrite to replace it");
        }
        Path source = ModelLocation.resolve(model, revision, HubOptions.fromEnvironment(), System.err);
        if (source.toAbsolutePath().normalize().equals(output.toAbsolutePath().normalize())) {
            throw new IllegalArgumentException("--output must differ from the source " + source);
        }
        CheckpointConverter.Result r = CheckpointConverter.convert(source, output, dtype, shard);
        System.out.printf(Locale.ROOT, "wrote %s: %d tensors, %.1f MB in %s%n", output, r.tensors(), r.bytes() / 1e6, String.join(", ", r.files()));
    }
}

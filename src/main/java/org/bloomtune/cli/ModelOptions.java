package org.bloomtune.cli;

import org.bloomtune.model.BloomModel;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.DType;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The flags that choose and place a model, shared by the commands that load one. */
final class ModelOptions {
    @Option(names = "--model", required = true, paramLabel = "DIR", description = "HuggingFace BLOOM directory")
    Path model;

    @Option(names = "--dtype", defaultValue = "fp32", paramLabel = "fp32|bf16|fp16",
            description = "compute dtype (default: ${DEFAULT-VALUE})")
    String dtype;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "DEVICE",
            description = "libtorch device: cpu, cuda, cuda:N (default: ${DEFAULT-VALUE})")
    String device;

    BloomModel load() {
        return BloomModel.load(model, new LoadOptions(DType.parseCompute(dtype), device));
    }
}

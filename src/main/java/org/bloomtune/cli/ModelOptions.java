package org.bloomtune.cli;

import org.bloomtune.hub.HubOptions;
import org.bloomtune.hub.ModelLocation;
import org.bloomtune.kernels.AutoDtype;
import org.bloomtune.model.AttentionKernel;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.Int8Mode;
import org.bloomtune.model.Int8Options;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.ProcessMemory;
import picocli.CommandLine.Option;

import java.nio.file.Path;

/** The flags that choose and place a model, shared by the commands that load one. */
final class ModelOptions {
    @Option(names = "--model", required = true, paramLabel = "DIR|ORG/NAME",
            description = "a HuggingFace BLOOM directory, or a hub id fetched through the Hugging Face cache (HF_HUB_CACHE, HF_HOME, HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE)")
    String model;

    @Option(names = "--revision", paramLabel = "REV", description = "for a hub id: branch, tag or commit (default: main)")
    String revision;

    private Path dir;

    /** The model's directory: as given, or the hub snapshot (downloaded the first time). */
    Path dir() {
        if (dir == null) dir = ModelLocation.resolve(model, revision, HubOptions.fromEnvironment(), System.err);
        return dir;
    }

    @Option(names = "--dtype", defaultValue = "fp32", paramLabel = "fp32|bf16|fp16|auto",
            description = "compute dtype (fp16 is for GPUs); auto: bf16 where the CPU multiplies bf16 at full rate (AVX512_BF16 measured twice float32's multiply-adds), else fp32")
    String dtype;

    @Option(names = "--device", defaultValue = "cpu", paramLabel = "DEVICE",
            description = "libtorch device: cpu, cuda, cuda:N (CUDA needs the -Pgpu build)")
    String device;

    @Option(names = "--int8", defaultValue = "none", paramLabel = "none|weight-only|llm-int8|dequantize",
            description = "quantize linear layers and the word embedding to int8 at load")
    String int8;

    @Option(names = "--int8-threshold", defaultValue = "6.0", paramLabel = "X",
            description = "LLM.int8 outlier threshold on |activation|")
    double int8Threshold;

    @Option(names = "--attention", defaultValue = "eager", paramLabel = "eager|sdpa",
            description = "attention kernel: HF's eager ops or libtorch's fused scaled_dot_product_attention")
    String attention;

    @Option(names = "--low-memory", description = "return freed tensor buffers to the OS at once: lower peak memory, slower steps")
    boolean lowMemory;

    /** The flags as the library's load options (checked, nothing loaded). */
    LoadOptions loadOptions() {
        Int8Options quantization = Flags.named(() -> new Int8Options(Int8Mode.parse(int8), int8Threshold));
        DType compute = dtype.equalsIgnoreCase("auto") ? AutoDtype.compute(device) : DType.parseCompute(dtype);
        return Flags.named(() -> new LoadOptions(compute, device, quantization, AttentionKernel.parse(attention), 0));
    }

    BloomModel load() { return load(loadOptions()); }

    /** The model for a command that only generates or scores ({@link LoadOptions#inferenceOnly}). */
    BloomModel loadForInference() { return load(loadOptions().forInference()); }

    private BloomModel load(LoadOptions options) {
        if (lowMemory) ProcessMemory.lowMemory();
        return BloomModel.load(dir(), options);
    }
}

package org.bloomtune.model;

import org.bloomtune.Reference;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A product taken out of libtorch's graph is the kernel's and its input gradient is {@code dy · W};
 * a block's input gradient formed that way equals the one libtorch forms through the recorded
 * dequantized weights (exactly for weight-only int8) — also when a layer norm's output feeds
 * both a product and the residual (BLOOM's {@code apply_residual_connection_post_layernorm}), so
 * the norm is reached once per path — and the graph holds no dequantized weight.
 */
class Int8BackwardTest {

    // Weight-only: the tape forms the recorded graph's products exactly. LLM.int8: its forward is the
    // quantized product (the first pass's), the recorded graph's the dequantized one (~3e-4 apart
    // at this init scale; Int8ModelTest).
    @ParameterizedTest
    @CsvSource({"WEIGHT_ONLY,false,1e-6", "WEIGHT_ONLY,true,1e-6", "LLM_INT8,false,1e-2", "LLM_INT8,true,1e-2"})
    void blockInputGradientEqualsTheRecordedGraphs(Int8Mode mode, boolean residualFromLayernorm, double tolerance, @TempDir Path dir) throws IOException {
        Path model = checkpoint(dir, residualFromLayernorm);
        try (BloomModel int8 = BloomModel.load(model, LoadOptions.defaults().withInt8(Int8Options.of(mode)));
             PointerScope scope = new PointerScope(); GradMode grad = GradMode.on()) {
            torch.manual_seed(7);
            long hidden = int8.config().hiddenSize();
            Tensor input = torch.randn(2, 9, hidden);
            Tensor gradOutput = torch.randn(2, 9, hidden);
            AttentionContext ctx = int8.stages().attentionContext(Tensors.fromLongs(new long[18], 2, 9).add(new Scalar(1)), 9, null);
            BloomBlock block = int8.stages().blocks().get(1);

            Tensor recorded = Autograd.leaf(input);
            Autograd.backward(block.forward(recorded, ctx, null, 1), gradOutput);

            Tensor taped = Autograd.leaf(input);
            try (Int8Backward tape = Int8Backward.open()) {
                Tensor y = block.forward(taped, ctx, null, 1);
                assertEquals(0, DequantizeScratch.inUse(), "a dequantized weight outlives its product");
                Autograd.backward(y, gradOutput, tape.retainsGraph());
                tape.backward();
            }
            Tensor expected = Tensors.gradient(recorded);
            double err = Reference.maxAbsDiff(expected, Tensors.gradient(taped)) / Reference.maxAbs(expected);
            System.out.printf("%s post-LN residual %s: block input gradient, tape vs recorded graph %.2e%n", mode, residualFromLayernorm, err);
            assertTrue(err <= tolerance, "relative error " + err);
        }
    }

    @ParameterizedTest
    @CsvSource({"WEIGHT_ONLY", "LLM_INT8"})
    void aProductIsTheKernelsAndItsInputGradientTheDequantizedWeights(Int8Mode mode) {
        try (PointerScope scope = new PointerScope(); GradMode grad = GradMode.on()) {
            torch.manual_seed(3);
            Int8Weight w = Int8Weight.quantize(torch.randn(48, 32));
            Tensor bias = torch.randn(48);
            Int8Kernel kernel = Int8Kernel.of(Int8Options.of(mode));
            Tensor input = torch.randn(3, 5, 32);
            Tensor gradOutput = torch.randn(3, 5, 48);
            Taped taped = taped(w, kernel, bias, input, gradOutput);
            Tensor firstPass;
            try (GradMode off = GradMode.off()) {
                firstPass = w.matmul(input.mul(new Scalar(2)), kernel, bias);
            }
            assertTrue(torch.equal(taped.y(), firstPass), "the recorded product is not the unrecorded forward's");
            // d/dx of (2x)·Wᵀ: 2 · dy · W, W dequantized
            Tensor expected = gradOutput.matmul(w.dequantize(ScalarType.Float)).mul(new Scalar(2));
            assertTrue(torch.allclose(taped.dx(), expected, 1e-5, 1e-5, false), "dx is not 2 dy W");
        }
    }

    // bfloat16 at a training step's row counts: the forward and dy · W go through the GEMM that
    // dequantizes the weight as it packs it (where the CPU has AVX512_BF16; libtorch's ops elsewhere).
    @ParameterizedTest
    @CsvSource({"WEIGHT_ONLY", "LLM_INT8"})
    void bfloat16TrainingRowsGetTheDequantizedWeightsGradient(Int8Mode mode) {
        try (PointerScope scope = new PointerScope(); GradMode grad = GradMode.on()) {
            torch.manual_seed(4);
            Int8Weight w = Int8Weight.quantize(torch.randn(96, 64));
            Int8Kernel kernel = Int8Kernel.of(Int8Options.of(mode));
            Tensor gradOutput = torch.randn(2, 40, 96).to(ScalarType.BFloat16);
            Taped taped = taped(w, kernel, null, torch.randn(2, 40, 64).to(ScalarType.BFloat16), gradOutput);
            Tensor exact = gradOutput.to(ScalarType.Double).matmul(w.dequantize(ScalarType.BFloat16).to(ScalarType.Double)).mul(new Scalar(2));
            Tensor error = taped.dx().to(ScalarType.Double).sub(exact).abs();
            // one bfloat16 rounding of a float32 sum of 96 terms
            Tensor bound = exact.abs().mul(new Scalar(Math.pow(2, -8))).add(new Scalar(1e-4));
            assertTrue(error.le(bound).all().item_bool(), "dx is not 2 dy W: max error " + error.max().item_double());
        }
    }

    private record Taped(Tensor y, Tensor dx) {}

    /** (2 · input) · Wᵀ (+ bias) recorded on a tape, and the gradient of input for the output gradient. */
    private static Taped taped(Int8Weight w, Int8Kernel kernel, Tensor bias, Tensor input, Tensor gradOutput) {
        Tensor x = Autograd.leaf(input);
        Tensor y;
        try (Int8Backward tape = Int8Backward.open()) {
            y = w.matmul(x.mul(new Scalar(2)), kernel, bias);              // a graph ahead of the product
            Autograd.backward(y, gradOutput, tape.retainsGraph());
            tape.backward();
        }
        return new Taped(y.detach(), Tensors.gradient(x));
    }

    /** The tiny model, with {@code apply_residual_connection_post_layernorm} as asked. */
    private static Path checkpoint(Path dir, boolean residualFromLayernorm) throws IOException {
        Path tiny = Path.of("models/bloom-tiny");
        for (String f : new String[]{"model.safetensors", "tokenizer.json", "generation_config.json"}) {
            Files.copy(tiny.resolve(f), dir.resolve(f));
        }
        String config = Files.readString(tiny.resolve("config.json"));
        Files.writeString(dir.resolve("config.json"), config.replace(
                "\"apply_residual_connection_post_layernorm\": false",
                "\"apply_residual_connection_post_layernorm\": " + residualFromLayernorm));
        return dir;
    }
}

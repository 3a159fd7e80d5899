package org.bloomtune.autograd;

import org.bloomtune.Reference;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.DType;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.model.ModelShapes;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The prompt gradient against central finite differences, and the backbone provably frozen. */
class PromptGradientTest {
    static final Path HF_B = Reference.reference("hf/b");

    @ParameterizedTest
    @EnumSource(value = ReversePass.class, names = "AUTO", mode = EnumSource.Mode.EXCLUDE)   // the two passes; AUTO picks one of them
    void gradientMatchesCentralFiniteDifferences(ReversePass pass) {
        Map<String, Tensor> g = Reference.read(HF_B.resolve("goldens.safetensors"));
        Tensor ids = g.get("inputs.lp.input_ids"), mask = g.get("inputs.lp.attention_mask"), labels = g.get("inputs.lp.labels");
        try (BloomModel model = BloomModel.load(HF_B.resolve("model"));
             BloomModel exact = BloomModel.load(HF_B.resolve("model"), LoadOptions.defaults().withDtype(DType.F64));
             PeftAdapter.Loaded a = PeftAdapter.load(HF_B.resolve("adapters/random"), model.config());
             PointerScope scope = new PointerScope()) {
            SoftPrompt prompt = a.prompt();
            PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, ids, mask, labels), pass);
            float[] grad = Tensors.toFloats(prompt.grad());
            float[] values = Tensors.toFloats(prompt.weight());
            double scale = 0;
            for (float v : grad) scale = Math.max(scale, Math.abs(v));
            for (int i : sampledCoordinates(grad, scale)) {
                // Central differences of the float64 model's loss, so that rounding of the loss
                // does not swamp the difference; the prompt itself stays float32.
                double fd = central(exact, values, i, 1e-3, ids, mask, labels);
                double rel = Math.abs(fd - grad[i]) / Math.abs(grad[i]);
                System.out.printf("%s: prompt_grad[%d] = %.7f, finite difference %.7f, relative error %.1e%n", pass, i, grad[i], fd, rel);
                assertTrue(rel <= 1e-3, pass + ": coordinate " + i + " autograd " + grad[i] + " vs finite difference " + fd + " (rel " + rel + ")");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(value = ReversePass.class, names = "AUTO", mode = EnumSource.Mode.EXCLUDE)   // the two passes; AUTO picks one of them
    void backboneNeitherRequiresNorReceivesGradients(ReversePass pass) {
        Map<String, Tensor> g = Reference.read(HF_B.resolve("goldens.safetensors"));
        try (BloomModel model = BloomModel.load(HF_B.resolve("model"));
             SoftPrompt prompt = SoftPrompt.random(4, model.config().hiddenSize(), 3);
             PointerScope scope = new PointerScope()) {
            PromptBackward.lossAndGrad(model, PromptedInput.of(model, prompt, g.get("inputs.rp.input_ids"),
                    g.get("inputs.rp.attention_mask"), g.get("inputs.rp.labels")), pass);
            assertEquals(model.config().parameterCount(), model.parameterCount());
            for (Map.Entry<String, Tensor> w : model.namedWeights().entrySet()) {
                assertFalse(w.getValue().requires_grad(), w.getKey() + " requires grad");
                assertFalse(Tensors.gradient(w.getValue()).defined(), w.getKey() + " received a gradient");
            }
            assertTrue(prompt.grad().defined(), "the prompt received no gradient");
        }
    }

    @Test
    void trainableShareOfTenVirtualTokensOnBloom1b4zh() {
        BloomConfig c = ModelShapes.named("bloom-1b4-zh");
        long trainable = 10L * c.hiddenSize();
        double share = 100.0 * trainable / (c.parameterCount() + trainable);
        System.out.printf("bloom-1b4-zh: %,d trainable of %,d parameters = %.5f %%%n", trainable, c.parameterCount() + trainable, share);
        // The seed reports "about 0.002 %" for this shape (10 x 2048 of ~1.3 B).
        assertEquals(0.0016, share, 0.0002);
    }

    private static double central(BloomModel model, float[] values, int i, double h, Tensor ids, Tensor mask, Tensor labels) {
        // The prompt is float32, so the steps actually taken are the rounded ones.
        float up = (float) (values[i] + h);
        float down = (float) (values[i] - h);
        return (loss(model, values, i, up, ids, mask, labels) - loss(model, values, i, down, ids, mask, labels))
                / ((double) up - (double) down);
    }

    private static double loss(BloomModel model, float[] values, int i, float value, Tensor ids, Tensor mask, Tensor labels) {
        float[] shifted = values.clone();
        shifted[i] = value;
        int hidden = model.config().hiddenSize();
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off();
             SoftPrompt p = SoftPrompt.of(Tensors.fromFloats(shifted, values.length / hidden, hidden));
             CausalLmOutput out = model.forward(PromptedInput.of(model, p, ids, mask, labels))) {
            return Tensors.toDouble(out.loss());
        }
    }

    /** The three largest entries and three random ones of at least a fifth of the largest. */
    private static List<Integer> sampledCoordinates(float[] grad, double scale) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < grad.length; i++) order.add(i);
        order.sort(Comparator.comparingDouble(i -> -Math.abs(grad[i])));
        List<Integer> picked = new ArrayList<>(order.subList(0, 3));
        List<Integer> sizable = order.stream().filter(i -> Math.abs(grad[i]) >= 0.2 * scale && !picked.contains(i)).toList();
        Random random = new Random(7);
        for (int k = 0; k < 3 && !sizable.isEmpty(); k++) picked.add(sizable.get(random.nextInt(sizable.size())));
        return picked;
    }
}

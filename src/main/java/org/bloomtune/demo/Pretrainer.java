package org.bloomtune.demo;

import org.bloomtune.train.AdamW;

import org.bloomtune.tensor.Autograd;

import org.bloomtune.data.Batch;
import org.bloomtune.data.BatchOrder;
import org.bloomtune.data.Example;
import org.bloomtune.io.HfCheckpoint;
import org.bloomtune.io.SafetensorsWriter;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.model.WeightNames;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;

import java.io.PrintStream;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Full-parameter language-model training of a small BLOOM with libtorch autograd — tooling, not the
 * product: it turns the seeded random tiny model into the embedded default that prompt tuning can
 * then steer. Every weight gets its own AdamW; the result is written in HF layout.
 */
public final class Pretrainer {
    private Pretrainer() {}

    public static double train(BloomModel model, List<Example> data, int epochs, int batchSize, double lr, long seed, PrintStream log) {
        if (model.viewsMappedFile()) {
            throw new IllegalArgumentException("pretraining updates weights in place: load a checkpoint stored in another dtype "
                    + "than the compute dtype (e.g. fp16 on disk, fp32 compute) so the weights are private copies");
        }
        Map<String, AdamW> optimizers = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> w : model.namedWeights().entrySet()) {
            w.getValue().requires_grad_(true);
            try (Tensor d = w.getValue().detach()) {
                optimizers.put(w.getKey(), new AdamW(d, 0.0));
            }
        }
        BatchOrder order = new BatchOrder(batchSize, seed, false);
        long padId = model.config().padTokenId();
        double last = Double.NaN;
        try {
            for (int epoch = 0; epoch < epochs; epoch++) {
                double sum = 0;
                List<List<Integer>> batches = order.epoch(data, epoch);
                for (List<Integer> indices : batches) {
                    List<Example> part = new ArrayList<>();
                    for (int i : indices) part.add(data.get(i));
                    try (Batch b = Batch.collate(part, padId); PointerScope scope = new PointerScope();
                         org.bloomtune.tensor.GradMode on = org.bloomtune.tensor.GradMode.on();
                         CausalLmOutput out = model.forward(CausalLmInput.ids(b.inputIds()).mask(b.attentionMask()).labels(b.labels()))) {
                        Autograd.backward(out.loss());
                        sum += Tensors.toDouble(out.loss());
                        for (Map.Entry<String, Tensor> w : model.namedWeights().entrySet()) {
                            Tensor grad = Tensors.gradient(w.getValue());
                            optimizers.get(w.getKey()).step(w.getValue(), grad, lr);
                            grad.zero_();
                        }
                    }
                }
                last = sum / batches.size();
                log.printf(Locale.ROOT, "epoch %d: mean loss %.4f%n", epoch + 1, last);
            }
        } finally {
            optimizers.values().forEach(AdamW::close);
            model.namedWeights().values().forEach(w -> w.requires_grad_(false));
        }
        return last;
    }

    /** Writes the model's weights as {@code model.safetensors} (HF keys, lm_head left out) in {@code storage}. */
    public static void save(BloomModel model, Path dir, DType storage) {
        try (PointerScope scope = new PointerScope()) {
            Map<String, Tensor> out = new LinkedHashMap<>();
            model.namedWeights().forEach((name, t) -> out.put(WeightNames.PREFIX + name, t.detach().to(storage.scalarType())));
            SafetensorsWriter.write(dir.resolve(HfCheckpoint.SAFETENSORS), out);
        }
    }
}

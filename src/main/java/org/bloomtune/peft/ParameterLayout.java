package org.bloomtune.peft;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * An encoder's trainable tensors, in PEFT's {@code named_parameters()} order, packed into one flat
 * float32 vector. The trainer, the optimizer, data-parallel reduction and checkpoints then deal
 * with a single tensor, as for prompt tuning; AdamW and the global gradient norm are elementwise
 * and whole-vector, so packing changes no update.
 */
public record ParameterLayout(List<Entry> entries) {

    /** One tensor: its name without PEFT's {@code prompt_encoder.default.} prefix, and its shape. */
    public record Entry(String name, long[] shape) {
        long numel() { return Tensors.numel(shape); }
    }

    public ParameterLayout {
        entries = List.copyOf(entries);
    }

    public long numel() { return entries.stream().mapToLong(Entry::numel).sum(); }

    /** Views of {@code flat} [numel] by name (recorded by autograd when grad mode is on). */
    public Map<String, Tensor> views(Tensor flat) {
        if (flat.dim() != 1 || flat.size(0) != numel()) {
            throw new IllegalArgumentException("a packed encoder must be [" + numel() + "], got " + Tensors.shapeString(flat));
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        long offset = 0;
        for (Entry e : entries) {
            out.put(e.name(), flat.narrow(0, offset, e.numel()).view(e.shape()));
            offset += e.numel();
        }
        return out;
    }

    /**
     * The named tensors packed in this layout's order (float32), checking every name and shape;
     * {@code where} names the source in errors.
     */
    public Tensor pack(Map<String, Tensor> named, String where) {
        for (String name : named.keySet()) {
            if (entries.stream().noneMatch(e -> e.name().equals(name))) {
                throw new IllegalArgumentException(where + ": unexpected tensor '" + name + "' (the config's encoder has " + names() + ")");
            }
        }
        org.bytedeco.pytorch.TensorVector parts = new org.bytedeco.pytorch.TensorVector();
        for (Entry e : entries) {
            Tensor t = named.get(e.name());
            if (t == null) throw new IllegalArgumentException(where + ": no tensor '" + e.name() + "' (has " + named.keySet() + ")");
            if (!Arrays.equals(Tensors.shape(t), e.shape())) {
                throw new IllegalArgumentException(where + ": " + e.name() + " has shape " + Tensors.shapeString(t)
                        + ", the config says " + Arrays.toString(e.shape()));
            }
            parts.push_back(t.detach().to(org.bytedeco.pytorch.global.torch.ScalarType.Float).reshape(-1));
        }
        return org.bytedeco.pytorch.global.torch.cat(parts, 0);
    }

    public List<String> names() { return entries.stream().map(Entry::name).toList(); }

    /** The shape of tensor {@code name}, or null when the layout has no such tensor. */
    public long[] shapeOf(String name) {
        return entries.stream().filter(e -> e.name().equals(name)).map(Entry::shape).findFirst().orElse(null);
    }
}

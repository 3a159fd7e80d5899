package org.bloomtune.model;

import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * Keys and values of the positions already processed, per layer, so that decoding one token costs
 * one position's work. Keys are kept as {@code [B*heads, head_dim, S]} (ready for the score
 * product) and values as {@code [B*heads, S, head_dim]}, as HF's BLOOM does. The cache owns its
 * tensors; {@link #close} frees them.
 */
public final class KvCache implements AutoCloseable {
    private final Tensor[] keys;
    private final Tensor[] values;
    private long length;

    public KvCache(int numLayers) {
        this.keys = new Tensor[numLayers];
        this.values = new Tensor[numLayers];
    }

    /** Positions cached so far (the same for every layer once a forward call has finished). */
    public long length() { return length; }

    /** Appends this call's keys and values for {@code layer}; returns the full [key, value]. */
    Tensor[] append(int layer, Tensor key, Tensor value) {
        Tensor fullKey = keys[layer] == null ? key : torch.cat(new TensorVector(keys[layer], key), 2);
        Tensor fullValue = values[layer] == null ? value : torch.cat(new TensorVector(values[layer], value), 1);
        replace(layer, Tensors.escape(fullKey), Tensors.escape(fullValue));
        return new Tensor[]{fullKey, fullValue};
    }

    /** Called by the model once every layer has appended {@code positions} new positions. */
    void advance(long positions) { length += positions; }

    private void replace(int layer, Tensor key, Tensor value) {
        if (keys[layer] != null) keys[layer].close();
        if (values[layer] != null) values[layer].close();
        keys[layer] = key;
        values[layer] = value;
    }

    @Override
    public void close() {
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) keys[i].close();
            if (values[i] != null) values[i].close();
            keys[i] = null;
            values[i] = null;
        }
        length = 0;
    }
}

package org.bloomtune.tensor;

import org.bytedeco.pytorch.BoolOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

/**
 * The two autograd moves every hand-made backward here is built from: cut a saved tensor loose as
 * a leaf that records, and push a gradient back from an output into the leaves. Used by both
 * reverse passes, the training heads and the classifier's objective.
 */
public final class Autograd {
    private Autograd() {}

    /** A fresh leaf that records: the gradient stops here and is read from {@code grad()}. */
    public static Tensor leaf(Tensor saved) {
        Tensor x = saved.detach();
        x.requires_grad_(true);
        return x;
    }

    /**
     * Backpropagates {@code gradOutput} (the output's shape) from {@code output} into every leaf
     * that records. libtorch's {@code autograd::backward}; {@code Tensor::backward} with a gradient
     * does the same in this build (an earlier note here said its binding crashed: checked against
     * libtorch 2.10 / JavaCPP 1.5.13, it does not).
     */
    public static void backward(Tensor output, Tensor gradOutput) {
        backward(output, gradOutput, false);
    }

    /**
     * Like {@link #backward(Tensor, Tensor)}; with {@code retainGraph} the graph's saved tensors
     * stay for another backward through the same nodes (they go when the graph's tensors die).
     */
    public static void backward(Tensor output, Tensor gradOutput, boolean retainGraph) {
        torch.backward(new TensorVector(output), new TensorVector(gradOutput), new BoolOptional(retainGraph), false, new TensorVector());
    }

    /** The gradient of a scalar {@code loss} into every leaf that records. */
    public static void backward(Tensor loss) {
        loss.backward();
    }
}

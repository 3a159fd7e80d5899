package org.bloomtune.train;

import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

/**
 * AdamW (Loshchilov &amp; Hutter; PyTorch's defaults β = (0.9, 0.999), ε = 1e-8) over one parameter,
 * written in tensor ops so its moments can be checkpointed exactly (JavaCPP does not expose
 * libtorch optimizers' state). Owns the moment tensors.
 */
public final class AdamW implements AutoCloseable {
    private final double beta1 = 0.9;
    private final double beta2 = 0.999;
    private final double eps = 1e-8;
    private final double weightDecay;
    private Tensor exp;        // first moment m
    private Tensor expSq;      // second moment v
    private long step;

    public AdamW(Tensor parameter, double weightDecay) {
        this(torch.zeros_like(parameter), torch.zeros_like(parameter), 0, weightDecay);
    }

    AdamW(Tensor exp, Tensor expSq, long step, double weightDecay) {
        this.exp = exp;
        this.expSq = expSq;
        this.step = step;
        this.weightDecay = weightDecay;
    }

    /** One update of {@code parameter} (in place) from {@code grad} at learning rate {@code lr}. */
    public void step(Tensor parameter, Tensor grad, double lr) {
        step++;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            parameter.mul_(new Scalar(1 - lr * weightDecay));                              // decoupled decay
            exp.mul_(new Scalar(beta1)).add_(grad, new Scalar(1 - beta1));
            expSq.mul_(new Scalar(beta2)).add_(grad.mul(grad), new Scalar(1 - beta2));
            double correction1 = 1 - Math.pow(beta1, step);
            double correction2 = 1 - Math.pow(beta2, step);
            Tensor denom = expSq.div(new Scalar(correction2)).sqrt().add(new Scalar(eps));
            parameter.add_(exp.div(denom), new Scalar(-lr / correction1));
        }
    }

    public long steps() { return step; }

    Tensor exp() { return exp; }

    Tensor expSq() { return expSq; }

    @Override
    public void close() {
        exp.close();
        expSq.close();
    }

    /** The L2 norm of {@code t}, accumulated in double. */
    static double norm(Tensor t) {
        try (PointerScope scope = new PointerScope()) {
            Tensor d = t.to(org.bytedeco.pytorch.global.torch.ScalarType.Double);
            return Tensors.toDouble(d.mul(d).sum().sqrt());
        }
    }
}

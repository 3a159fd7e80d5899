package org.bloomtune.train;

import org.bloomtune.dist.C10dCollective.PeerFailure;
import org.bloomtune.dist.Collective;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.Autograd;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Scalar;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * What the trainer exchanges with the other ranks of a data-parallel run: the starting point
 * (rank 0's), a check that every rank trains the same thing, the summed gradient and loss of each
 * step, a check that the states stayed equal, and summed evaluation statistics. Values travel as
 * float64 (exact for the counts and hashes involved); in a world of one every call is local.
 */
final class DataParallel {
    private final Collective collective;

    DataParallel(Collective collective) { this.collective = collective; }

    int rank() { return collective.rank(); }

    int worldSize() { return collective.worldSize(); }

    boolean isLeader() { return collective.isLeader(); }

    boolean isDistributed() { return collective.worldSize() > 1; }

    void barrier(String what) { collective.barrier(what); }

    /** Rank 0's values, on every rank. */
    double[] fromLeader(double[] values, String what) {
        if (!isDistributed()) return values;
        try (Tensor t = doubles(values)) {
            collective.broadcast(t, 0, what);
            return Tensors.toDoubles(t);
        }
    }

    /** Whether {@code mine} holds on any rank (every rank gets the same answer). */
    boolean anyRank(boolean mine, String what) {
        if (!isDistributed()) return mine;
        return max(new double[]{mine ? 1 : 0}, what)[0] > 0;
    }

    /** The element-wise sum of {@code values} over ranks. */
    double[] sum(double[] values, String what) {
        if (!isDistributed()) return values;
        try (Tensor t = doubles(values)) {
            collective.allReduceSum(t, what);
            return Tensors.toDoubles(t);
        }
    }

    /** Replaces the prompt and the optimizer moments by rank 0's; returns an optimizer over them that has taken {@code steps}. */
    AdamW startFromLeader(SoftPrompt prompt, AdamW adam, long steps, double weightDecay) {
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            collective.broadcast(prompt.weight().detach(), 0, "the soft prompt");
            collective.broadcast(adam.exp(), 0, "the optimizer's first moment");
            collective.broadcast(adam.expSq(), 0, "the optimizer's second moment");
        }
        AdamW synced = new AdamW(adam.exp().clone(), adam.expSq().clone(), steps, weightDecay);
        adam.close();
        return synced;
    }

    /**
     * Every rank must train the same thing on the same data: each setting and data fingerprint is
     * compared with rank 0's, and every rank stops naming those that differ on any rank.
     */
    void agreeOnSettings(RunSettings settings) {
        if (!isDistributed()) return;
        List<String> names = new ArrayList<>(settings.values().keySet());
        double[] mine = new double[names.size() + 1];
        mine[0] = names.size();
        for (int i = 0; i < names.size(); i++) mine[i + 1] = hash(names.get(i) + "=" + settings.values().get(names.get(i)));
        int longest = (int) max(new double[]{mine.length}, "the settings check")[0];
        double[] padded = Arrays.copyOf(mine, longest);
        double[] leader = fromLeader(padded, "the settings check");
        double[] differs = new double[longest];
        for (int i = 0; i < longest; i++) differs[i] = i < mine.length && leader[i] == mine[i] ? 0 : 1;
        differs = max(differs, "the settings check");
        List<String> different = new ArrayList<>();
        for (int i = 1; i < longest; i++) {
            if (differs[i] != 0) different.add(i - 1 < names.size() ? names.get(i - 1) : "(a setting this rank lacks)");
        }
        if (differs[0] != 0 && different.isEmpty()) different.add("(the number of settings: different BloomTune versions?)");
        if (!different.isEmpty()) {
            throw new IllegalArgumentException("rank " + rank() + ": the ranks were started with different settings or data ("
                    + String.join(", ", different) + " differ from rank 0's); start every rank with the same command on the same files");
        }
    }

    /**
     * Sums the prompt gradient and {@code lossSum} over ranks in one all-reduce, the gradient in
     * place; returns the summed loss.
     */
    double sumGradientAndLoss(SoftPrompt prompt, double lossSum) {
        if (!isDistributed()) return lossSum;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            if (!prompt.grad().defined()) {
                // This rank's shards were empty (a short last batch): its contribution is a zero gradient.
                try (GradMode on = GradMode.on()) {
                    Autograd.backward(prompt.weight().mul(new Scalar(0.0)).sum());
                }
            }
            Tensor grad = prompt.grad();
            long n = grad.numel();
            Tensor packed = torch.cat(new TensorVector(grad.reshape(-1).to(torch.ScalarType.Double), doubles(new double[]{lossSum})));
            collective.allReduceSum(packed, "the gradient");
            grad.copy_(packed.narrow(0, 0, n).view(grad.sizes()).to(grad.scalar_type()));
            return packed.narrow(0, n, 1).item_double();
        }
    }

    /** Every rank must hold the same prompt and moments; a difference means the ranks diverged. */
    void checkSameState(SoftPrompt prompt, AdamW adam, int step) {
        if (!isDistributed()) return;
        double sum;
        try (PointerScope scope = new PointerScope(); GradMode off = GradMode.off()) {
            sum = Tensors.toDouble(prompt.weight().detach().to(torch.ScalarType.Double).sum()
                    .add(adam.exp().to(torch.ScalarType.Double).sum()).add(adam.expSq().to(torch.ScalarType.Double).sum()));
        }
        double[] extremes = max(new double[]{sum, -sum}, "the state check");
        if (extremes[0] != -extremes[1]) {
            throw new PeerFailure("rank " + rank() + ": the ranks' prompts and optimizer states diverged at step " + step
                    + " (checksums from " + -extremes[1] + " to " + extremes[0] + ")", null);
        }
    }

    private double[] max(double[] values, String what) {
        try (Tensor t = doubles(values)) {
            collective.allReduceMax(t, what);
            return Tensors.toDoubles(t);
        }
    }

    private static Tensor doubles(double[] values) { return Tensors.fromDoubles(values, values.length); }

    /** 52 bits of SHA-256: exact in a double, collisions beyond concern for comparing a few settings. */
    private static double hash(String s) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8));
            return ByteBuffer.wrap(d).getLong() >>> 12;
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JDK lacks SHA-256", e);
        }
    }
}

package org.bloomtune.bench;

import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationStats;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Decode speed against the memory-bandwidth floor, all in one process: for each mode and batch, a
 * generation's decode steps (ms/step from its own {@link GenerationStats}, prefill excluded) beside
 * a read rate measured right before and right after it (libtorch's {@code sum} over 1 GiB of
 * float32 on all its threads, best of five). A decode step reads every weight once and the KV
 * cache once, so its floor is those bytes ÷ the read rate; the table gives ms/step ÷ floor.
 * {@code DecodeProbe [SHAPE [NEW_TOKENS [MODE:BATCH ...]]]}; defaults bloom-560m, 129, every mode at
 * batch 1 and 8. The bytes: the model's resident weights (int8 values and their scales where
 * quantized; the tied lm_head once) plus the cache at the mean position.
 */
public final class DecodeProbe {
    private static final int PROMPT = 8;
    private static final long READ_BYTES = 1L << 30;

    private DecodeProbe() {}

    /** The runs {@link Report} and a bare invocation measure: every mode at batch 1 and 8. */
    static final List<String> DEFAULT_RUNS = List.of("fp32:1", "bf16:1", "bf16-int8-weight-only:1", "int8-weight-only:1", "int8-llm-int8:1",
            "fp32:8", "bf16:8", "bf16-int8-weight-only:8", "int8-weight-only:8", "int8-llm-int8:8");

    public static void main(String[] args) {
        String shape = args.length > 0 ? args[0] : "bloom-560m";
        int newTokens = args.length > 1 ? Integer.parseInt(args[1]) : 129;
        System.out.print(table(shape, newTokens, args.length > 2 ? List.of(args).subList(2, args.length) : DEFAULT_RUNS));
    }

    /** The markdown table for {@code runs} ("MODE:BATCH"), each row also printed to stderr as it is measured. */
    static String table(String shape, int newTokens, List<String> runs) {
        LibTorch.init();
        StringBuilder md = new StringBuilder(String.format(Locale.ROOT, "%s, %d-token prompts, %d new tokens (decode steps: %d), libtorch threads %d%n%n"
                + "| mode | batch | decode ms/step | bytes read per step MB | read rate before / after GB/s | floor ms | × floor | effective GB/s |%n"
                + "|---|---|---|---|---|---|---|---|%n", shape, PROMPT, newTokens, newTokens - 1, torch.get_num_threads()));
        for (String run : runs) {
            String mode = run.substring(0, run.indexOf(':'));
            int batch = Integer.parseInt(run.substring(run.indexOf(':') + 1));
            String row = row(shape, mode, batch, newTokens);
            System.err.println(row);
            md.append(row).append('\n');
        }
        return md.toString();
    }

    private static String row(String shape, String mode, int batch, int newTokens) {
        try (BloomModel model = BloomModel.load(Checkpoints.random(shape), Modes.options(mode))) {
            List<long[]> prompts = prompts(model.config(), batch);
            new Generator(model).generate(prompts, GenerationConfig.greedy(9, -1), TokenListener.NONE);          // warm-up
            double before = readRate();
            GenerationStats stats = new Generator(model).generate(prompts, GenerationConfig.greedy(newTokens, -1), TokenListener.NONE).stats();
            double after = readRate();
            double bytes = model.residentWeightBytes() + cacheBytes(model.config(), mode, batch, PROMPT + newTokens / 2.0);
            double floorMs = bytes / (Math.max(before, after) * 1e9) * 1e3;
            double ms = stats.secondsPerDecodeStep() * 1e3;
            return String.format(Locale.ROOT, "| %s | %d | %.1f | %.0f | %.1f / %.1f | %.1f | %.2f | %.1f |", mode, batch, ms, bytes / 1e6,
                    before, after, floorMs, ms / floorMs, bytes / (ms / 1e3) / 1e9);
        }
    }

    /** Keys and values of every layer at {@code positions}, in the compute dtype, read once per step. */
    static double cacheBytes(BloomConfig c, String mode, int batch, double positions) {
        int element = mode.startsWith("bf16") ? 2 : 4;
        return 2.0 * c.numLayers() * batch * positions * c.hiddenSize() * element;
    }

    private static List<long[]> prompts(BloomConfig c, int batch) {
        Random r = new Random(2);
        List<long[]> prompts = new ArrayList<>();
        for (int b = 0; b < batch; b++) {
            long[] ids = new long[PROMPT];
            for (int i = 0; i < PROMPT; i++) ids[i] = r.nextInt(c.vocabSize());
            prompts.add(ids);
        }
        return prompts;
    }

    /** GB/s of libtorch's {@code sum} over 1 GiB of float32, best of five: the rate a decode step could read weights at. */
    static double readRate() {
        try (PointerScope scope = new PointerScope()) {
            Tensor t = torch.ones(READ_BYTES / Float.BYTES);
            double best = 0;
            for (int i = 0; i < 5; i++) {
                long start = System.nanoTime();
                try (Tensor s = t.sum()) {
                    best = Math.max(best, READ_BYTES / (double) (System.nanoTime() - start));
                }
            }
            return best;
        }
    }
}

package org.bloomtune.bench;

import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationStats;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.TokenListener;
import org.bloomtune.kernels.DenseGemm;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.tensor.LibTorch;
import org.bytedeco.javacpp.PointerScope;
import org.bloomtune.tensor.shim.AtenShim;
import org.bytedeco.pytorch.MemoryFormatOptional;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorOptions;
import org.bytedeco.pytorch.global.torch;
import org.bytedeco.pytorch.global.torch.ScalarType;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Decode speed against the memory-bandwidth floor, all in one process: for each mode and batch, a
 * generation's decode steps (ms/step from its own {@link GenerationStats}, prefill excluded) beside
 * a read rate measured right before and right after it ({@link ReadRate}: libtorch's {@code sum}
 * over a kept gibibyte of float32 on all its threads, best of five), the median step from the same
 * stats and the steps held up from outside ({@link StepClock}). A decode step reads every weight
 * once and the KV cache once, so its floor is those bytes ÷ the read rate; the table gives ms/step
 * ÷ floor.
 * {@code DecodeProbe [SHAPE [NEW_TOKENS [MODE:BATCH ...]]]}; defaults bloom-560m, 129, every mode at
 * batch 1 and 8. The bytes: the model's resident weights (int8 values and their scales where
 * quantized; the tied lm_head once) plus the cache at the mean position.
 */
public final class DecodeProbe {
    private static final int PROMPT = 8;
    /** A step this many times the median was held up from outside (a stopped vCPU, the guest's page work), not slower code. */
    private static final double STALLED = 2;
    /** int8 products a multiply-add of the weight-only panels by digits (native/int8_digits_panels.c): one a digit of x. */
    private static final int DIGITS = 3;

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
                + "| mode | batch | decode ms/step | median ms/step | steps ≥ %.0f× median | bytes read per step MB | read rate before / after GB/s "
                + "| memory floor ms | × memory floor | GEMM GOP/s | ops per step G | compute floor ms | × roofline | effective GB/s | steal %% |%n"
                + "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|%n", shape, PROMPT, newTokens, newTokens - 1, torch.get_num_threads(),
                STALLED));
        try (ReadRate read = new ReadRate()) {
            for (String run : runs) {
                String mode = run.substring(0, run.indexOf(':'));
                int batch = Integer.parseInt(run.substring(run.indexOf(':') + 1));
                String row = row(shape, mode, batch, newTokens, read);
                System.err.println(row);
                md.append(row).append('\n');
            }
        }
        return md.toString();
    }

    private static String row(String shape, String mode, int batch, int newTokens, ReadRate read) {
        try (BloomModel model = BloomModel.load(Checkpoints.random(shape), Modes.options(mode).forInference())) {
            List<long[]> prompts = prompts(model.config(), batch);
            new Generator(model).generate(prompts, GenerationConfig.greedy(9, -1), TokenListener.NONE);          // warm-up
            double before = read.measure();
            long[] steal = CpuSteal.sample();
            StepClock clock = new StepClock(newTokens);
            GenerationStats stats = new Generator(model).generate(prompts, GenerationConfig.greedy(newTokens, -1), clock).stats();
            double stolen = CpuSteal.percent(steal, CpuSteal.sample());
            double after = read.measure();
            double gemm = gemmRate(mode);
            double positions = PROMPT + newTokens / 2.0;
            double bytes = model.residentWeightBytes() + cacheBytes(model.config(), mode, batch, positions);
            double memoryMs = bytes / (Math.max(before, after) * 1e9) * 1e3;
            double flops = stepFlops(model.config(), batch, positions) * (Modes.byDigits(mode) ? DIGITS : 1);
            double computeMs = flops / (gemm * 1e9) * 1e3;
            double ms = stats.secondsPerDecodeStep() * 1e3;
            double median = stats.medianDecodeStepSeconds() * 1e3;
            return String.format(Locale.ROOT, "| %s | %d | %.1f | %.1f | %d | %.0f | %.1f / %.1f | %.1f | %.2f | %.0f | %.2f | %.1f | %.2f | %.1f | %.1f |", mode, batch,
                    ms, median, clock.stepsAtLeast(STALLED * median), bytes / 1e6, before, after, memoryMs, ms / memoryMs, gemm, flops / 1e9,
                    computeMs, ms / Math.max(memoryMs, computeMs), bytes / (ms / 1e3) / 1e9, stolen);
        }
    }

    /** Keys and values of every layer at {@code positions}, in the compute dtype, read once per step. */
    static double cacheBytes(BloomConfig c, String mode, int batch, double positions) {
        int element = mode.startsWith("bf16") ? 2 : 4;
        return 2.0 * c.numLayers() * batch * positions * c.hiddenSize() * element;
    }

    /**
     * Multiply-adds (×2) of one decode step: every row through each block's four products (3H², H²,
     * 4H², 4H²) and the lm_head (V·H), and attention's scores and weighted sum over the cache.
     */
    static double stepFlops(BloomConfig c, int batch, double positions) {
        double h = c.hiddenSize();
        double perRow = c.numLayers() * (12 * h * h + 2 * positions * h) + (double) c.vocabSize() * h;
        return 2 * batch * perRow;
    }

    /**
     * G(FL)OP/s of the GEMM for the mode's arithmetic at {@link Report#PEAK_SHAPE}, best of five after a
     * warm-up: {@code _int_mm}'s int8 ops for LLM.int8 and for weight-only panels multiplying by digits
     * (x's digits times the int8 weights by {@code vpdpbusd}, the instruction {@code _int_mm} runs on), else
     * the faster of libtorch's float matmul of {@link Modes#peakDtype} and BloomTune's native one of that
     * dtype ({@link DenseGemm}), as the Report's peak (weight-only int8 by floats widens each weight and
     * multiplies in the activations' dtype).
     */
    static double gemmRate(String mode) {
        long[] mkn = GemmBenchmark.parse(Report.PEAK_SHAPE);
        boolean int8 = Modes.int8Products(mode) || Modes.byDigits(mode);
        try (PointerScope scope = new PointerScope()) {
            ScalarType type = int8 ? ScalarType.Char : Modes.peakDtype(mode).equals("bf16") ? ScalarType.BFloat16 : ScalarType.Float;
            Tensor a = torch.ones(mkn[0], mkn[1]).to(type);
            Tensor b = int8 ? torch.ones(mkn[2], mkn[1]).to(type).t() : torch.ones(mkn[1], mkn[2]).to(type);
            Tensor out = torch.empty(new long[]{mkn[0], mkn[2]}, new TensorOptions(ScalarType.Int), new MemoryFormatOptional());
            double best = bestRate(mkn, () -> {
                if (int8) AtenShim.intMm(out, a, b);
                else a.matmul(b);
            });
            Tensor w = torch.ones(mkn[2], mkn[1]).to(type);                                  // W [N, K]
            if (int8 || !DenseGemm.applies(a, w, true)) return best;
            Tensor c = torch.empty(new long[]{mkn[0], mkn[2]}, new TensorOptions(type), new MemoryFormatOptional());
            return Math.max(best, bestRate(mkn, () -> DenseGemm.linearInto(c, a, w)));
        }
    }

    /** GFLOP/s of the best of five runs of {@code product} (an M×K×N product) after a warm-up. */
    private static double bestRate(long[] mkn, Runnable product) {
        double best = 0;
        for (int i = 0; i < 6; i++) {
            long start = System.nanoTime();
            try (PointerScope inner = new PointerScope()) {
                product.run();
            }
            if (i > 0) best = Math.max(best, 2.0 * mkn[0] * mkn[1] * mkn[2] / (System.nanoTime() - start));
        }
        return best;
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
}

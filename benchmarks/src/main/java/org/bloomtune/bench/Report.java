package org.bloomtune.bench;

import org.bloomtune.model.BloomConfig;
import org.bloomtune.model.ModelShapes;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.OptionsBuilder;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;

/**
 * Runs every benchmark and writes {@code benchmarks/jmh-report.md}: the GEMM roofline, then each
 * forward row as tokens/s and model FLOP utilization against the peak of the same run.
 *
 * <p>Model FLOPs of a forward over B×T tokens: 2 · (non-embedding parameters + the lm_head's V·H) ·
 * B·T for the matmuls, plus 4 · layers · B · T² · H for attention's two products (the full square,
 * as computed).
 */
public final class Report {
    /** UTF-8 size of TokenizerBenchmark's text (alpaca_zh_demo.json + instruction-data.json). */
    static final long TOKENIZER_BYTES = 636_036 + 203_524;

    private Report() {}

    public static void main(String[] args) throws RunnerException, IOException {
        Path out = Path.of(args.length > 0 ? args[0] : "benchmarks/jmh-report.md");
        Collection<RunResult> gemm = run(GemmBenchmark.class);
        Collection<RunResult> tokenizer = run(TokenizerBenchmark.class);
        Collection<RunResult> quantize = run(QuantizeBenchmark.class);
        Collection<RunResult> forward = run(ForwardBenchmark.class);
        Collection<RunResult> step = run(StepBenchmark.class);
        Map<String, Double> peak = gemmPeak(gemm);
        StringBuilder md = new StringBuilder();
        md.append("# JMH report (generated)\n\n");
        md.append("Regenerate: `JAVA_HOME=/usr/lib/jvm/temurin-25-jdk-amd64 mvn -q -B -Pbench -DskipTests package && "
                + "/usr/lib/jvm/temurin-25-jdk-amd64/bin/java -cp target/bloomtune.jar org.bloomtune.bench.Report`\n\n");
        md.append(Machine.describe()).append('\n');
        md.append("## GEMM roofline (libtorch matmul, same run)\n\n| shape M×K×N | dtype | ms | GFLOP/s |\n|---|---|---|---|\n");
        for (RunResult r : gemm) {
            long[] mkn = GemmBenchmark.parse(param(r, "shape"));
            double ms = r.getPrimaryResult().getScore();
            md.append(String.format(Locale.ROOT, "| %s | %s | %.2f | %.1f |%n", param(r, "shape"), param(r, "dtype"), ms,
                    2.0 * mkn[0] * mkn[1] * mkn[2] / (ms / 1e3) / 1e9));
        }
        md.append(String.format(Locale.ROOT, "%nPeak: fp32 %.1f GFLOP/s, bf16 %.1f GFLOP/s.%n%n", peak.get("fp32"), peak.get("bf16")));
        md.append("## Tokenizer (pure Java byte-level BPE, GPT-2 tokenizer.json, one thread)\n\n| text | ms/encode | MB/s |\n|---|---|---|\n");
        for (RunResult r : tokenizer) {
            double ms = r.getPrimaryResult().getScore();
            md.append(String.format(Locale.ROOT, "| sample Alpaca zh + en, %.2f MB | %.1f | %.2f |%n%n", TOKENIZER_BYTES / 1e6, ms,
                    TOKENIZER_BYTES / 1e6 / (ms / 1e3)));
        }
        md.append("## LLM.int8 activation quantization: native/ kernel vs libtorch op chain\n\n| shape | quantizer | µs/op | ± |\n|---|---|---|---|\n");
        for (RunResult r : quantize) {
            md.append(String.format(Locale.ROOT, "| %s | %s | %.1f | %.1f |%n", param(r, "shape"), param(r, "quantizer"),
                    r.getPrimaryResult().getScore(), r.getPrimaryResult().getScoreError()));
        }
        md.append("\n## Forward (no grad)\n\n| shape | mode | B×T | ms/forward | tokens/s | MFU | weights MiB | RSS MiB |\n|---|---|---|---|---|---|---|---|\n");
        for (RunResult r : forward) {
            BloomConfig c = ModelShapes.named(param(r, "shape"));
            int batch = Integer.parseInt(param(r, "batch"));
            int seq = Integer.parseInt(param(r, "seq"));
            double ms = r.getPrimaryResult().getScore();
            double flops = forwardFlops(c, batch, seq);
            String mode = param(r, "mode");
            double mfu = flops / (ms / 1e3) / (peak.get(mode.startsWith("bf16") ? "bf16" : "fp32") * 1e9);
            md.append(String.format(Locale.ROOT, "| %s | %s | %d×%d | %.0f | %.1f | %.1f %% | %s | %s |%n", param(r, "shape"), mode,
                    batch, seq, ms, batch * seq / (ms / 1e3), 100 * mfu, aux(r, "weightMiB"), aux(r, "rssMiB")));
        }
        md.append("\nMFU is against the same run's GEMM peak of the compute dtype (bf16 rows: bf16; all others: fp32), with\n"
                + "the model's FLOPs whatever the kernel: LLM.int8 multiplies in int8, which runs faster than the fp32 peak.\n");
        md.append("\n## Prompt-tuning step (forward + backward to the soft prompt, fp32, labels on every token)\n\n"
                + "| shape | reverse pass | B×(N+T) | s/step | tokens/s | MFU (4·params·tokens) | peak above model MiB |\n|---|---|---|---|---|---|---|\n");
        for (RunResult r : step) {
            BloomConfig c = ModelShapes.named(param(r, "shape"));
            int batch = Integer.parseInt(param(r, "batch"));
            int tokens = batch * (Integer.parseInt(param(r, "seq")) + Integer.parseInt(param(r, "virtualTokens")));
            double s = r.getPrimaryResult().getScore() / 1e3;
            double mfu = 4.0 * c.parameterCount() * tokens / s / (peak.get("fp32") * 1e9);
            md.append(String.format(Locale.ROOT, "| %s | %s | %d×%d | %.2f | %.1f | %.1f %% | %s |%n", param(r, "shape"), param(r, "pass"),
                    batch, tokens / batch, s, tokens / s, 100 * mfu, aux(r, "stepPeakMiB")));
        }
        md.append("\nStep MFU counts FLOPs as the peer's measurement does: 4 · parameters · tokens (forward plus input-only\n"
                + "backward, attention ignored), against the same run's fp32 GEMM peak.\n");
        Files.writeString(out, md);
        System.out.println(md);
    }

    static double forwardFlops(BloomConfig c, int batch, int seq) {
        double tokens = (double) batch * seq;
        double nonEmbedding = c.parameterCount() - (double) c.vocabSize() * c.hiddenSize();
        double matmuls = 2 * (nonEmbedding + (double) c.vocabSize() * c.hiddenSize()) * tokens;
        double attention = 4.0 * c.numLayers() * batch * (double) seq * seq * c.hiddenSize();
        return matmuls + attention;
    }

    private static Collection<RunResult> run(Class<?> benchmark) throws RunnerException {
        return new Runner(new OptionsBuilder().include(benchmark.getSimpleName()).timeUnit(
                benchmark == QuantizeBenchmark.class ? TimeUnit.MICROSECONDS : TimeUnit.MILLISECONDS).build()).run();
    }

    private static Map<String, Double> gemmPeak(Collection<RunResult> gemm) {
        Map<String, Double> peak = new LinkedHashMap<>();
        for (RunResult r : gemm) {
            long[] mkn = GemmBenchmark.parse(param(r, "shape"));
            double gflops = 2.0 * mkn[0] * mkn[1] * mkn[2] / (r.getPrimaryResult().getScore() / 1e3) / 1e9;
            peak.merge(param(r, "dtype"), gflops, Math::max);
        }
        return peak;
    }

    private static String param(RunResult r, String name) { return r.getParams().getParam(name); }

    private static String aux(RunResult r, String name) {
        var result = r.getSecondaryResults().get(name);
        return result == null ? "-" : String.format(Locale.ROOT, "%.0f", result.getScore() / Math.max(1, result.getSampleCount()));
    }

    static final class Machine {
        static String describe() {
            String cpu = "?";
            String flags = "";
            try {
                for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                    if (line.startsWith("model name")) cpu = line.substring(line.indexOf(':') + 1).trim();
                    if (line.startsWith("flags")) flags = line;
                }
            } catch (IOException e) {
                cpu = "unknown (" + e.getMessage() + ")";
            }
            List<String> wanted = List.of("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile");
            StringBuilder f = new StringBuilder();
            for (String w : wanted) if (flags.contains(" " + w)) f.append(w).append(' ');
            return String.format(Locale.ROOT, "Machine: %d cores, %s (%s), %.1f GiB RAM; JVM %s %s; libtorch 2.10.0 (JavaCPP pytorch %s).%n",
                    Runtime.getRuntime().availableProcessors(), cpu, f.toString().trim(),
                    totalMemoryGiB(), System.getProperty("java.vm.name"), System.getProperty("java.version"),
                    org.bytedeco.pytorch.global.torch.class.getPackage().getImplementationVersion());
        }

        private static double totalMemoryGiB() {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                    if (line.startsWith("MemTotal:")) return Long.parseLong(line.replaceAll("\\D", "")) / 1048576.0;
                }
            } catch (IOException ignored) {
                // reported as 0 below
            }
            return 0;
        }
    }
}

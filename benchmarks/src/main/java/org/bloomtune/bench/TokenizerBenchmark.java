package org.bloomtune.bench;

import org.bloomtune.tokenizer.Tokenizer;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Threads;
import org.openjdk.jmh.annotations.Warmup;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Tokenizer encoding speed on one thread. {@code alpaca}: the sample Alpaca data (Chinese and
 * English) with GPT-2's tokenizer.json, many short pieces. {@code cjk-1mb}: one 1 MB run of Chinese
 * characters without a space or punctuation — a single piece under BLOOM's pre-tokenizer, the case
 * that was quadratic — with the embedded model's BLOOM-pipeline tokenizer. Paths are relative to
 * the repository root; the Report divides each text's UTF-8 size by the time for MB/s.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Threads(1)
@Fork(value = 1)
public class TokenizerBenchmark {
    @Param({"alpaca", "cjk-1mb"})
    public String text;

    private Tokenizer tokenizer;
    private String input;

    /** A named text and the tokenizer that encodes it. */
    record Workload(Path tokenizer, String text) {
        static Workload of(String name) {
            Path data = Path.of("src/test/resources/data");
            try {
                String zh = Files.readString(data.resolve("instruct_zh/alpaca_zh_demo.json"));
                return switch (name) {
                    case "alpaca" -> new Workload(data.resolve("tokenizer/gpt2/tokenizer.json"),
                            zh + Files.readString(data.resolve("instruct_en/instruction-data.json")));
                    case "cjk-1mb" -> new Workload(Path.of("models/bloom-tiny/tokenizer.json"), hanRun(zh, 1 << 20));
                    default -> throw new IllegalArgumentException("unknown text " + name);
                };
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        long bytes() { return text.getBytes(StandardCharsets.UTF_8).length; }

        /** The Han characters of {@code source}, repeated to {@code bytes} bytes of UTF-8 (3 bytes each). */
        private static String hanRun(String source, int bytes) {
            StringBuilder han = new StringBuilder();
            source.codePoints().filter(c -> Character.UnicodeScript.of(c) == Character.UnicodeScript.HAN).forEach(han::appendCodePoint);
            StringBuilder out = new StringBuilder(bytes / 3);
            while (out.length() < bytes / 3) out.append(han, 0, Math.min(han.length(), bytes / 3 - out.length()));
            return out.toString();
        }
    }

    @Setup(Level.Trial)
    public void setUp() {
        Workload w = Workload.of(text);
        tokenizer = Tokenizer.load(w.tokenizer());
        input = w.text();
    }

    @Benchmark
    public long[] encode() {
        return tokenizer.encode(input);
    }
}

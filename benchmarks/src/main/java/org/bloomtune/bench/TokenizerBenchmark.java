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
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * Tokenizer encoding speed on one thread over the sample Alpaca data (Chinese and English), with
 * GPT-2's tokenizer.json from ../shared/data. Bytes per op are reported so the score converts to MB/s.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Threads(1)
@Fork(value = 1)
public class TokenizerBenchmark {
    @Param({"../shared"})
    public String shared;

    private Tokenizer tokenizer;
    private String text;
    public long bytes;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        Path root = Path.of(shared);
        tokenizer = Tokenizer.load(root.resolve("data/tokenizer/gpt2/tokenizer.json"));
        text = Files.readString(root.resolve("data/instruct_zh/alpaca_zh_demo.json"))
                + Files.readString(root.resolve("data/instruct_en/instruction-data.json"));
        bytes = text.getBytes(StandardCharsets.UTF_8).length;
    }

    @Benchmark
    public long[] encode() {
        return tokenizer.encode(text);
    }
}

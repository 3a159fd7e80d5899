package org.bloomtune.bench;

import org.bloomtune.demo.RandomCheckpoint;
import org.bloomtune.io.CheckpointConverter;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.Int8Mode;
import org.bloomtune.model.Int8Options;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.model.ModelShapes;
import org.bloomtune.tensor.ProcessMemory;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;

/**
 * Loading a checkpoint, measured in a process of its own: seconds to load, resident memory right
 * after (a zero-copy load maps the file without touching it) and the process's peak.
 * {@code LoadProbe make SHAPE DIR} writes a seeded random float32 checkpoint of a named shape as
 * Langboat ships bloom-1b4-zh ({@code DIR/bin}: pytorch_model.bin with a separate lm_head) and the
 * same weights as one safetensors file ({@code DIR/safetensors}); {@code LoadProbe load DIR
 * [none|llm-int8|weight-only]} loads one.
 */
public final class LoadProbe {
    private LoadProbe() {}

    public static void main(String[] args) {
        if (args[0].equals("make")) {
            Path dir = Path.of(args[2]);
            long t0 = System.nanoTime();
            RandomCheckpoint.writeBin(ModelShapes.named(args[1]), dir.resolve("bin"), 0);
            long t1 = System.nanoTime();
            CheckpointConverter.convert(dir.resolve("bin"), dir.resolve("safetensors"), null, Long.MAX_VALUE);
            System.out.printf(Locale.ROOT, "wrote %s (%.1f s) and %s (%.1f s)%n", dir.resolve("bin"), (t1 - t0) / 1e9,
                    dir.resolve("safetensors"), (System.nanoTime() - t1) / 1e9);
            return;
        }
        Path dir = Path.of(args[1]);
        Int8Mode mode = Int8Mode.parse(args.length > 2 ? args[2] : "none");
        LoadOptions options = LoadOptions.defaults().withInt8(new Int8Options(mode, Int8Options.DEFAULT_THRESHOLD));
        long before = ProcessMemory.residentBytes();
        long t0 = System.nanoTime();
        try (BloomModel model = BloomModel.load(dir, options)) {
            double seconds = (System.nanoTime() - t0) / 1e9;
            System.out.printf(Locale.ROOT, "%s %s: load %.1f s, RSS before %.0f MiB, after load %.0f MiB, peak %.0f MiB, weights %.0f MiB, views of the file: %s%n",
                    dir, mode, seconds, mib(before), mib(ProcessMemory.residentBytes()), mib(ProcessMemory.peakResidentBytes()),
                    mib(model.residentWeightBytes()), model.viewsMappedFile());
        }
        if (Files.exists(dir)) System.out.flush();
    }

    private static double mib(long b) { return b / 1048576.0; }
}

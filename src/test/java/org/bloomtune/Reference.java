package org.bloomtune;

import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** The reference checkpoints and goldens in {@code ../shared/reference}, read in place. */
public final class Reference {
    private Reference() {}

    public static Path shared() {
        Path p = Path.of(System.getProperty("bloomtune.shared", "../shared")).toAbsolutePath().normalize();
        assertTrue(Files.isDirectory(p.resolve("reference")), "reference data not found at " + p);
        return p;
    }

    public static Path reference(String sub) { return shared().resolve("reference").resolve(sub); }

    /** All tensors of a golden file, copied out (the file is closed again). */
    public static Map<String, Tensor> read(Path file) {
        Map<String, Tensor> out = new HashMap<>();
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            for (String n : f.names()) out.put(n, f.copy(n));
        }
        return out;
    }

    public static double maxAbsDiff(Tensor a, Tensor b) {
        float[] x = Tensors.toFloats(a);
        float[] y = Tensors.toFloats(b);
        assertEquals(x.length, y.length, "element counts differ: " + Tensors.shapeString(a) + " vs " + Tensors.shapeString(b));
        double m = 0;
        for (int i = 0; i < x.length; i++) m = Math.max(m, Math.abs((double) x[i] - y[i]));
        return m;
    }

    public static double maxAbs(Tensor a) {
        double m = 0;
        for (float v : Tensors.toFloats(a)) m = Math.max(m, Math.abs(v));
        return m;
    }
}

package org.bloomtune;

import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.pytorch.Tensor;

import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

/**
 * The test fixtures in {@code src/test/resources} (provenance in its {@code SOURCES.md}): the
 * reference checkpoints and goldens, and real text for the tokenizer. Read from the test classpath,
 * so a fresh clone needs nothing beside it.
 */
public final class Reference {
    private Reference() {}

    /** The root of the test resources (the directory that holds {@code SOURCES.md}). */
    public static Path fixtures() {
        URL marker = Reference.class.getResource("/SOURCES.md");
        assertNotNull(marker, "test resources are not on the class path (src/test/resources/SOURCES.md)");
        try {
            return Path.of(marker.toURI()).getParent();
        } catch (URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** {@code reference/sub}: a reference checkpoint set and its goldens. */
    public static Path reference(String sub) { return fixtures().resolve("reference").resolve(sub); }

    /** {@code data/sub}: real text (instructions, tokenizer vectors). */
    public static Path data(String sub) { return fixtures().resolve("data").resolve(sub); }

    /** The ChnSentiCorp sample the demo and the classification tests share. */
    public static Path chnSentiCorpTrain() { return Path.of("models/demo-data/chnsenticorp_train_first2000.tsv"); }

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

    /** The real tokens of each row of a padded batch (mask 1), as the prompts a user would give. */
    public static java.util.List<long[]> unpad(Tensor ids, Tensor mask) {
        long[] i = Tensors.toLongs(ids);
        long[] m = Tensors.toLongs(mask);
        int width = (int) ids.size(1);
        java.util.List<long[]> rows = new java.util.ArrayList<>();
        for (int b = 0; b < ids.size(0); b++) {
            java.util.List<Long> row = new java.util.ArrayList<>();
            for (int t = 0; t < width; t++) if (m[b * width + t] == 1) row.add(i[b * width + t]);
            rows.add(row.stream().mapToLong(Long::longValue).toArray());
        }
        return rows;
    }

    /** Seeded uniform token ids [batch, length] below {@code vocab}. */
    public static Tensor randomIds(int batch, int length, int vocab, long seed) {
        java.util.Random r = new java.util.Random(seed);
        long[] ids = new long[batch * length];
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(vocab);
        return Tensors.fromLongs(ids, batch, length);
    }

    /** max |got − expected| / max |expected|: the relative error the gradient checks use (infinite when expected is all zero). */
    public static double relativeMaxDiff(float[] expected, float[] got) {
        assertEquals(expected.length, got.length, "lengths");
        double scale = 0, diff = 0;
        for (int i = 0; i < got.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(got[i] - expected[i]));
        }
        return scale == 0 ? Double.POSITIVE_INFINITY : diff / scale;
    }

    /** The two checkpoints give bit-identical logits on hf/a's left-padded batch. */
    public static void assertSameLogits(Path a, Path b) {
        Map<String, Tensor> g = read(reference("hf/a/goldens.safetensors"));
        try (org.bloomtune.model.BloomModel x = org.bloomtune.model.BloomModel.load(a); org.bloomtune.model.BloomModel y = org.bloomtune.model.BloomModel.load(b); org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off();
             org.bloomtune.model.CausalLmOutput p = x.forward(org.bloomtune.model.CausalLmInput.ids(g.get("inputs.lp.input_ids")).mask(g.get("inputs.lp.attention_mask")));
             org.bloomtune.model.CausalLmOutput q = y.forward(org.bloomtune.model.CausalLmInput.ids(g.get("inputs.lp.input_ids")).mask(g.get("inputs.lp.attention_mask")))) {
            assertEquals(0.0, maxAbsDiff(p.logits(), q.logits()));
        }
    }

    /** The two checkpoints give bit-identical logits on {@code ids} (fp32 compute). */
    public static void assertSameLogitsOnIds(Path a, Path b, long[] ids) {
        try (org.bloomtune.model.BloomModel x = org.bloomtune.model.BloomModel.load(a); org.bloomtune.model.BloomModel y = org.bloomtune.model.BloomModel.load(b);
             org.bloomtune.tensor.GradMode off = org.bloomtune.tensor.GradMode.off(); Tensor t = Tensors.fromLongs(ids, 1, ids.length);
             org.bloomtune.model.CausalLmOutput p = x.forward(org.bloomtune.model.CausalLmInput.ids(t));
             org.bloomtune.model.CausalLmOutput q = y.forward(org.bloomtune.model.CausalLmInput.ids(t))) {
            assertEquals(0.0, maxAbsDiff(p.logits(), q.logits()));
        }
    }

    /** The initial trainable tensors of an hf-ptuning case ({@code params.prompt_encoder.default.*}), by PEFT's name without that prefix. */
    public static Map<String, Tensor> peftParams(Map<String, Tensor> goldens) {
        String prefix = "params.prompt_encoder.default.";
        Map<String, Tensor> named = new java.util.LinkedHashMap<>();
        goldens.forEach((k, v) -> { if (k.startsWith(prefix)) named.put(k.substring(prefix.length()), v); });
        return named;
    }
}

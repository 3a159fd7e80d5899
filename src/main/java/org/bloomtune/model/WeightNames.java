package org.bloomtune.model;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The one table of HuggingFace BLOOM weight names and the shapes a config implies. Checkpoints
 * store them with a {@code transformer.} prefix ({@code BloomForCausalLM.save_pretrained}) or
 * without (bigscience's own files); {@code lm_head.weight} is tied to the word embeddings.
 */
public final class WeightNames {
    public static final String PREFIX = "transformer.";
    public static final String LM_HEAD = "lm_head.weight";
    public static final String WORD_EMBEDDINGS = "word_embeddings.weight";

    private WeightNames() {}

    /** Every weight a BLOOM of this config has, without prefix, with its shape, in file order. */
    public static Map<String, long[]> expected(BloomConfig c) {
        long h = c.hiddenSize();
        Map<String, long[]> out = new LinkedHashMap<>();
        out.put(WORD_EMBEDDINGS, new long[]{c.vocabSize(), h});
        layerNorm(out, "word_embeddings_layernorm", h);
        for (int i = 0; i < c.numLayers(); i++) {
            String p = block(i);
            layerNorm(out, p + "input_layernorm", h);
            linear(out, p + "self_attention.query_key_value", 3 * h, h);
            linear(out, p + "self_attention.dense", h, h);
            layerNorm(out, p + "post_attention_layernorm", h);
            linear(out, p + "mlp.dense_h_to_4h", 4 * h, h);
            linear(out, p + "mlp.dense_4h_to_h", h, 4 * h);
        }
        layerNorm(out, "ln_f", h);
        return out;
    }

    public static String block(int layer) { return "h." + layer + "."; }

    /** The prefix the file uses: {@code "transformer."} when its embedding carries it, else "". */
    public static String detectPrefix(Set<String> names) {
        return names.contains(PREFIX + WORD_EMBEDDINGS) ? PREFIX : "";
    }

    /** Names in the file that are neither expected nor the (tied, ignored) lm_head. */
    public static List<String> unexpected(Set<String> names, String prefix, Map<String, long[]> expected) {
        List<String> out = new ArrayList<>();
        for (String n : names) {
            if (n.equals(LM_HEAD)) continue;
            if (!n.startsWith(prefix) || !expected.containsKey(n.substring(prefix.length()))) out.add(n);
        }
        return out;
    }

    private static void layerNorm(Map<String, long[]> out, String name, long h) {
        out.put(name + ".weight", new long[]{h});
        out.put(name + ".bias", new long[]{h});
    }

    private static void linear(Map<String, long[]> out, String name, long outFeatures, long inFeatures) {
        out.put(name + ".weight", new long[]{outFeatures, inFeatures});
        out.put(name + ".bias", new long[]{outFeatures});
    }
}

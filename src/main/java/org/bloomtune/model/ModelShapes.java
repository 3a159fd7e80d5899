package org.bloomtune.model;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;

/** The named BLOOM shapes shipped in {@code models/shapes/} (and inside the jar). */
public final class ModelShapes {
    public static final List<String> NAMES = List.of("tiny", "bloom-560m", "bloom-1b1", "bloom-1b4-zh", "bloom-1b7");

    private ModelShapes() {}

    public static BloomConfig named(String name) {
        if (!NAMES.contains(name)) {
            throw new IllegalArgumentException("unknown model shape '" + name + "' (known: " + String.join(", ", NAMES) + ")");
        }
        try (InputStream in = ModelShapes.class.getResourceAsStream("/org/bloomtune/shapes/" + name + ".json")) {
            if (in == null) throw new IllegalStateException("shape " + name + " is missing from the jar");
            String json = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            return BloomConfig.fromJson(org.bloomtune.io.Json.parse(json, name + ".json").getAsJsonObject());
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}

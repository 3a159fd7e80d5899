package org.bloomtune.classify;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.io.Json;
import org.bloomtune.io.TextFiles;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A pattern–verbalizer pair (PET, Schick and Schütze 2021) for a causal LM. The pattern wraps the
 * input ({@code "{text}。总之很"}); the label word is predicted at the next position after it.
 * The verbalizer maps each label to one or more words ({@code 积极 → 好, 消极 → 差}). A word of
 * several tokens scores the mean log-probability of its tokens; a label with several words scores
 * the mean of its words' scores.
 *
 * <p>On disk, a small JSON file:
 * <pre>{@code
 * {"pattern": "{text}。总之很",
 *  "labels": {"积极": ["好"], "消极": ["差"]},
 *  "data_labels": {"positive": "积极", "negative": "消极"}}
 * }</pre>
 * {@code data_labels} (optional) maps the label values a dataset uses to the labels above.
 *
 * @param source where the verbalizer came from, for error messages
 */
public record Verbalizer(String pattern, Map<String, List<String>> labels, Map<String, String> dataLabels, String source) {
    public static final String FILE = "verbalizer.json";
    public static final String SLOT = "{text}";
    /** The pattern of an inline verbalizer such as {@code 积极→好，消极→差}. */
    public static final String DEFAULT_PATTERN = "{text}。总之很";

    public Verbalizer {
        if (pattern == null || !pattern.contains(SLOT)) {
            throw new IllegalArgumentException(source + ": pattern must contain " + SLOT + ", got " + quoted(pattern));
        }
        if (pattern.indexOf(SLOT) != pattern.lastIndexOf(SLOT)) {
            throw new IllegalArgumentException(source + ": pattern must contain " + SLOT + " once, got " + quoted(pattern));
        }
        if (labels == null || labels.size() < 2) {
            throw new IllegalArgumentException(source + ": labels needs at least two labels, got " + (labels == null ? 0 : labels.size()));
        }
        labels.forEach((label, words) -> {
            if (label.isBlank()) throw new IllegalArgumentException(source + ": a label name is empty");
            if (words == null || words.isEmpty()) throw new IllegalArgumentException(source + ": label '" + label + "' has an empty word list");
            for (String w : words) {
                if (w == null || w.isEmpty()) throw new IllegalArgumentException(source + ": label '" + label + "' has an empty word");
            }
        });
        dataLabels = dataLabels == null ? Map.of() : dataLabels;
        for (var e : dataLabels.entrySet()) {
            if (!labels.containsKey(e.getValue())) {
                throw new IllegalArgumentException(source + ": data_labels maps '" + e.getKey() + "' to unknown label '" + e.getValue()
                        + "' (labels are " + labels.keySet() + ")");
            }
        }
        labels = copy(labels);
        dataLabels = new LinkedHashMap<>(dataLabels);
    }

    /** Label names in the order scores, probabilities and the confusion matrix use. */
    public List<String> labelNames() { return List.copyOf(labels.keySet()); }

    public int numLabels() { return labels.size(); }

    /** The index of a label given by its name or by a dataset value in {@code data_labels}. */
    public int labelIndex(String value, String where) {
        String name = labels.containsKey(value) ? value : dataLabels.get(value);
        if (name == null) {
            throw new IllegalArgumentException(where + ": unknown label '" + value + "' (" + source + " knows " + labels.keySet()
                    + (dataLabels.isEmpty() ? "" : " and data labels " + dataLabels.keySet()) + ")");
        }
        return labelNames().indexOf(name);
    }

    /** The text before {@code {text}} in the pattern. */
    public String prefix() { return pattern.substring(0, pattern.indexOf(SLOT)); }

    /** The text after {@code {text}}: the label word follows it. */
    public String suffix() { return pattern.substring(pattern.indexOf(SLOT) + SLOT.length()); }

    /** Reads a verbalizer file, or parses {@code spec} inline ({@code 积极→好，消极→差}) when it is not a file. */
    public static Verbalizer fromArgument(String spec) {
        Path file = Path.of(spec);
        if (Files.isRegularFile(file)) return load(file);
        if (spec.contains("→") || spec.contains("->")) return inline(spec);
        throw new IllegalArgumentException("--verbalizer " + spec + ": no such file, and not an inline verbalizer like 积极→好，消极→差");
    }

    /**
     * An inline verbalizer with the {@link #DEFAULT_PATTERN}: {@code label→word} pairs separated by
     * {@code ，} or {@code ,}; several words for one label separated by {@code |}.
     */
    public static Verbalizer inline(String spec) {
        Map<String, List<String>> labels = new LinkedHashMap<>();
        for (String pair : spec.split("[，,;；]")) {
            if (pair.isBlank()) continue;
            String[] parts = pair.split("→|->", -1);
            if (parts.length != 2) throw new IllegalArgumentException("verbalizer '" + spec + "': '" + pair + "' is not label→word");
            List<String> words = new ArrayList<>();
            for (String w : parts[1].split("\\|")) words.add(w.strip());
            labels.put(parts[0].strip(), words);
        }
        return new Verbalizer(DEFAULT_PATTERN, labels, Map.of(), "verbalizer '" + spec + "'");
    }

    public static Verbalizer load(Path file) {
        return parse(TextFiles.readUtf8(file), file.toString());
    }

    public static Verbalizer parse(String json, String source) {
        JsonElement root = Json.parse(json, source);
        if (!root.isJsonObject()) throw new IllegalArgumentException(source + ": expected a JSON object, found " + Json.kind(root));
        JsonObject o = root.getAsJsonObject();
        String pattern = o.has("pattern") ? string(o.get("pattern"), source, "pattern") : DEFAULT_PATTERN;
        if (!o.has("labels") || !o.get("labels").isJsonObject()) {
            throw new IllegalArgumentException(source + ": field labels must be an object {label: [words]}");
        }
        Map<String, List<String>> labels = new LinkedHashMap<>();
        for (var e : o.getAsJsonObject("labels").entrySet()) labels.put(e.getKey(), words(e.getValue(), source, e.getKey()));
        Map<String, String> dataLabels = new LinkedHashMap<>();
        if (o.has("data_labels")) {
            if (!o.get("data_labels").isJsonObject()) throw new IllegalArgumentException(source + ": field data_labels must be an object");
            for (var e : o.getAsJsonObject("data_labels").entrySet()) {
                dataLabels.put(e.getKey(), string(e.getValue(), source, "data_labels." + e.getKey()));
            }
        }
        return new Verbalizer(pattern, labels, dataLabels, source);
    }

    /** The JSON form {@link #parse} reads. */
    public String toJson() {
        JsonObject o = new JsonObject();
        o.addProperty("pattern", pattern);
        JsonObject l = new JsonObject();
        labels.forEach((label, words) -> {
            JsonArray a = new JsonArray();
            words.forEach(a::add);
            l.add(label, a);
        });
        o.add("labels", l);
        JsonObject d = new JsonObject();
        dataLabels.forEach(d::addProperty);
        o.add("data_labels", d);
        return new com.google.gson.GsonBuilder().setPrettyPrinting().disableHtmlEscaping().create().toJson(o) + "\n";
    }

    private static List<String> words(JsonElement e, String source, String label) {
        List<String> out = new ArrayList<>();
        if (e.isJsonPrimitive()) {
            out.add(string(e, source, "labels." + label));
        } else if (e.isJsonArray()) {
            for (JsonElement w : e.getAsJsonArray()) out.add(string(w, source, "labels." + label));
        } else {
            throw new IllegalArgumentException(source + ": labels." + label + " must be a word or a list of words");
        }
        return out;
    }

    private static String string(JsonElement e, String source, String field) {
        if (e == null || !e.isJsonPrimitive() || !e.getAsJsonPrimitive().isString()) {
            throw new IllegalArgumentException(source + ": field " + field + " must be a string");
        }
        return e.getAsString();
    }

    private static Map<String, List<String>> copy(Map<String, List<String>> labels) {
        Map<String, List<String>> out = new LinkedHashMap<>();
        labels.forEach((k, v) -> out.put(k, List.copyOf(v)));
        return java.util.Collections.unmodifiableMap(out);
    }

    private static String quoted(String s) { return s == null ? "nothing" : "'" + s + "'"; }
}

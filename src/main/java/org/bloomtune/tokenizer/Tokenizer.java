package org.bloomtune.tokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonParseException;
import com.google.gson.JsonParser;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A byte-level BPE tokenizer read from a HuggingFace {@code tokenizer.json}, in pure Java. The
 * pipeline is the one the file declares — BLOOM's (Split on its regex, isolated; ByteLevel without
 * regex) or GPT-2's (ByteLevel with GPT-2's regex) — never chosen by model name. Added tokens
 * ({@code </s>}, ...) are matched in the text first and never split.
 */
public final class Tokenizer {
    private final Bpe bpe;
    private final PreTokenizer preTokenizer;
    private final Map<String, Integer> added;
    private final Pattern addedPattern;
    private final Map<Integer, String> tokens;

    private Tokenizer(Bpe bpe, PreTokenizer preTokenizer, Map<String, Integer> added, Map<Integer, String> tokens) {
        this.bpe = bpe;
        this.preTokenizer = preTokenizer;
        this.added = added;
        this.tokens = tokens;
        this.addedPattern = added.isEmpty() ? null : Pattern.compile(added.keySet().stream()
                .sorted((a, b) -> b.length() - a.length()).map(Pattern::quote)
                .reduce((a, b) -> a + "|" + b).orElseThrow());
    }

    public static Tokenizer load(Path tokenizerJson) {
        try {
            JsonElement root = JsonParser.parseString(Files.readString(tokenizerJson));
            if (!root.isJsonObject()) throw new IllegalArgumentException("not a JSON object");
            return fromJson(root.getAsJsonObject());
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read " + tokenizerJson + ": " + e.getMessage(), e);
        } catch (JsonParseException | IllegalArgumentException | IllegalStateException | UnsupportedOperationException e) {
            throw new IllegalArgumentException(tokenizerJson + ": " + e.getMessage(), e);
        }
    }

    static Tokenizer fromJson(JsonObject o) {
        JsonElement normalizer = o.get("normalizer");
        if (normalizer != null && !normalizer.isJsonNull()) {
            throw new IllegalArgumentException("normalizer " + normalizer.getAsJsonObject().get("type") + " is not supported (BLOOM and GPT-2 use none)");
        }
        JsonObject model = o.getAsJsonObject("model");
        if (model == null || !"BPE".equals(model.get("type").getAsString())) throw new IllegalArgumentException("model.type must be BPE");
        Map<String, Integer> vocab = new HashMap<>();
        Map<Integer, String> tokens = new HashMap<>();
        for (Map.Entry<String, JsonElement> e : model.getAsJsonObject("vocab").entrySet()) {
            vocab.put(e.getKey(), e.getValue().getAsInt());
            tokens.put(e.getValue().getAsInt(), e.getKey());
        }
        List<String[]> merges = new ArrayList<>();
        for (JsonElement m : model.getAsJsonArray("merges")) {
            String[] pair = m.isJsonArray()
                    ? new String[]{m.getAsJsonArray().get(0).getAsString(), m.getAsJsonArray().get(1).getAsString()}
                    : m.getAsString().split(" ", 2);
            if (pair.length != 2) throw new IllegalArgumentException("merge '" + m + "' is not a pair");
            merges.add(pair);
        }
        Map<String, Integer> added = new LinkedHashMap<>();
        JsonArray addedTokens = o.getAsJsonArray("added_tokens");
        if (addedTokens != null) {
            for (JsonElement t : addedTokens) {
                JsonObject a = t.getAsJsonObject();
                added.put(a.get("content").getAsString(), a.get("id").getAsInt());
                tokens.put(a.get("id").getAsInt(), a.get("content").getAsString());
            }
        }
        return new Tokenizer(new Bpe(vocab, merges), preTokenizer(o.get("pre_tokenizer")), added, tokens);
    }

    private static PreTokenizer preTokenizer(JsonElement json) {
        if (json == null || json.isJsonNull()) throw new IllegalArgumentException("pre_tokenizer is missing");
        JsonObject o = json.getAsJsonObject();
        String type = o.get("type").getAsString();
        return switch (type) {
            case "Sequence" -> {
                List<PreTokenizer> steps = new ArrayList<>();
                for (JsonElement e : o.getAsJsonArray("pretokenizers")) steps.add(preTokenizer(e));
                yield PreTokenizer.sequence(steps);
            }
            case "ByteLevel" -> PreTokenizer.byteLevel(bool(o, "add_prefix_space", true), bool(o, "use_regex", true));
            case "Split" -> {
                String behavior = o.get("behavior").getAsString();
                if (!behavior.equals("Isolated") || bool(o, "invert", false)) {
                    throw new IllegalArgumentException("Split behavior " + behavior + " is not supported (BLOOM uses Isolated)");
                }
                JsonObject pattern = o.getAsJsonObject("pattern");
                String regex = pattern.has("Regex") ? pattern.get("Regex").getAsString() : Pattern.quote(pattern.get("String").getAsString());
                yield PreTokenizer.isolated(Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS));
            }
            default -> throw new IllegalArgumentException("pre_tokenizer type " + type + " is not supported");
        };
    }

    private static boolean bool(JsonObject o, String key, boolean fallback) {
        return o.has(key) && !o.get(key).isJsonNull() ? o.get(key).getAsBoolean() : fallback;
    }

    public long[] encode(String text) { return encodeWithOffsets(text).ids(); }

    public List<long[]> encodeBatch(List<String> texts) {
        return texts.stream().map(this::encode).toList();
    }

    public Encoding encodeWithOffsets(String text) {
        List<Long> ids = new ArrayList<>();
        List<int[]> spans = new ArrayList<>();
        int last = 0;
        if (addedPattern != null) {
            Matcher m = addedPattern.matcher(text);
            while (m.find()) {
                encodeSpan(text.substring(last, m.start()), last, ids, spans);
                ids.add((long) added.get(m.group()));
                spans.add(new int[]{m.start(), m.end()});
                last = m.end();
            }
        }
        encodeSpan(text.substring(last), last, ids, spans);
        long[] out = ids.stream().mapToLong(Long::longValue).toArray();
        int[] starts = spans.stream().mapToInt(s -> s[0]).toArray();
        int[] ends = spans.stream().mapToInt(s -> s[1]).toArray();
        return new Encoding(out, starts, ends);
    }

    private void encodeSpan(String span, int offset, List<Long> ids, List<int[]> spans) {
        if (span.isEmpty()) return;
        for (PreTokenizer.Piece piece : preTokenizer.split(List.of(new PreTokenizer.Piece(span, offset)))) {
            Bpe.Word word = bpe.encode(ByteLevel.encode(piece.text()));
            int[] charOfByte = charOfByte(piece.text());
            int bytePos = 0;
            for (int i = 0; i < word.ids().length; i++) {
                ids.add((long) word.ids()[i]);
                int startChar = charOfByte[bytePos];
                bytePos += word.lengths()[i];
                int endChar = bytePos >= charOfByte.length ? piece.text().length() : charOfByte[bytePos];
                if (endChar == startChar) endChar = Math.min(piece.text().length(), startChar + 1);
                spans.add(new int[]{Math.max(offset, piece.start() + startChar), piece.start() + endChar});
            }
        }
    }

    /** For each UTF-8 byte of {@code text}, the index of the char (UTF-16 unit) it belongs to. */
    private static int[] charOfByte(String text) {
        int[] map = new int[text.getBytes(StandardCharsets.UTF_8).length];
        int b = 0;
        for (int c = 0; c < text.length(); ) {
            int cp = text.codePointAt(c);
            int n = new String(Character.toChars(cp)).getBytes(StandardCharsets.UTF_8).length;
            for (int k = 0; k < n; k++) map[b++] = c;
            c += Character.charCount(cp);
        }
        return map;
    }

    /** Text of {@code ids}: added tokens verbatim, the rest byte-decoded (invalid UTF-8 becomes U+FFFD). */
    public String decode(long[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (long id : ids) {
            String token = tokens.get((int) id);
            if (token == null) throw new IllegalArgumentException("token id " + id + " is not in the vocabulary");
            if (added.containsKey(token)) {
                bytes.writeBytes(token.getBytes(StandardCharsets.UTF_8));
            } else {
                ByteLevel.decode(token, bytes);
            }
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /** The token string of {@code id} (byte-level characters, e.g. "Ġthe"). */
    public String token(long id) { return tokens.get((int) id); }

    public Integer id(String token) { return added.containsKey(token) ? added.get(token) : bpe.id(token); }

    public int vocabSize() { return tokens.size(); }
}

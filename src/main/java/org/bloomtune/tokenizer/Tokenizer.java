package org.bloomtune.tokenizer;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import org.bloomtune.io.Json;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

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
    private final Set<Integer> special;
    private final Pattern addedPattern;
    private final Map<Integer, String> tokens;

    private Tokenizer(Bpe bpe, PreTokenizer preTokenizer, Map<String, Integer> added, Set<Integer> special, Map<Integer, String> tokens) {
        this.bpe = bpe;
        this.preTokenizer = preTokenizer;
        this.added = added;
        this.special = special;
        this.tokens = tokens;
        this.addedPattern = added.isEmpty() ? null : Pattern.compile(added.keySet().stream()
                .sorted((a, b) -> b.length() - a.length()).map(Pattern::quote)
                .reduce((a, b) -> a + "|" + b).orElseThrow());
    }

    /** Reads {@code tokenizer.json}; anything malformed or unsupported is an error naming the file and field. */
    public static Tokenizer load(Path tokenizerJson) {
        JsonObject root = Json.readObject(tokenizerJson);
        try {
            return fromJson(root);
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(tokenizerJson + ": " + e.getMessage(), e);
        }
    }

    static Tokenizer fromJson(JsonObject o) {
        if (Json.has(o, "normalizer")) {
            JsonElement n = o.get("normalizer");
            String type = n.isJsonObject() && Json.has(n.getAsJsonObject(), "type") ? n.getAsJsonObject().get("type").toString() : n.toString();
            throw new IllegalArgumentException("normalizer " + type + " is not supported (BLOOM and GPT-2 use none)");
        }
        JsonObject model = Json.object(o, "model");
        String type = Json.has(model, "type") ? field(() -> Json.requiredString(model, "type"), "model.") : "BPE";
        if (!type.equals("BPE")) throw new IllegalArgumentException("model.type is " + type + ", only BPE is supported");
        Map<String, Integer> vocab = new HashMap<>();
        Map<Integer, String> tokens = new HashMap<>();
        for (Map.Entry<String, JsonElement> e : field(() -> Json.object(model, "vocab"), "model.").entrySet()) {
            int id = field(() -> Json.toInt(e.getValue(), "vocab[\"" + e.getKey() + "\"]"), "model.");
            if (id < 0) throw new IllegalArgumentException("model.vocab[\"" + e.getKey() + "\"] has a negative id " + id);
            String previous = tokens.put(id, e.getKey());
            if (previous != null) throw new IllegalArgumentException("model.vocab gives id " + id + " to both '" + previous + "' and '" + e.getKey() + "'");
            vocab.put(e.getKey(), id);
        }
        List<String[]> merges = merges(field(() -> Json.array(model, "merges"), "model."));
        Map<String, Integer> added = new LinkedHashMap<>();
        Set<Integer> special = new HashSet<>();
        if (Json.has(o, "added_tokens")) {
            JsonArray addedTokens = Json.array(o, "added_tokens");
            for (int i = 0; i < addedTokens.size(); i++) {
                String where = "added_tokens[" + i + "]";
                JsonElement t = addedTokens.get(i);
                if (!t.isJsonObject()) throw new IllegalArgumentException(where + " must be an object, found " + Json.kind(t));
                JsonObject a = t.getAsJsonObject();
                String content = field(() -> Json.requiredString(a, "content"), where + ".");
                int id = field(() -> Json.requiredInt(a, "id"), where + ".");
                if (content.isEmpty() || id < 0) throw new IllegalArgumentException(where + ": empty content or negative id");
                added.put(content, id);
                String other = tokens.put(id, content);
                if (other != null && !other.equals(content) && !vocab.containsKey(content)) {
                    throw new IllegalArgumentException(where + " gives id " + id + " to '" + content + "', which model.vocab gives to '" + other + "'");
                }
                if (field(() -> Json.bool(a, "special", false), where + ".")) special.add(id);
            }
        }
        String unk = field(() -> Json.optionalString(model, "unk_token"), "model.");
        Bpe bpe = new Bpe(vocab, merges, unk);
        return new Tokenizer(bpe, preTokenizer(o.get("pre_tokenizer"), "pre_tokenizer"), added, special, tokens);
    }

    private static List<String[]> merges(JsonArray json) {
        List<String[]> merges = new ArrayList<>(json.size());
        for (int i = 0; i < json.size(); i++) {
            JsonElement m = json.get(i);
            String[] pair;
            if (m.isJsonArray() && m.getAsJsonArray().size() == 2) {
                int k = i;
                pair = new String[]{field(() -> Json.toStringValue(m.getAsJsonArray().get(0), "merges[" + k + "][0]"), "model."),
                        field(() -> Json.toStringValue(m.getAsJsonArray().get(1), "merges[" + k + "][1]"), "model.")};
            } else if (m.isJsonPrimitive() && m.getAsJsonPrimitive().isString()) {
                pair = m.getAsString().split(" ", -1);
            } else {
                throw new IllegalArgumentException("model.merges[" + i + "] must be \"left right\" or [left, right], found " + m);
            }
            if (pair.length != 2 || pair[0].isEmpty() || pair[1].isEmpty()) {
                throw new IllegalArgumentException("model.merges[" + i + "] " + m + " is not a pair of two tokens");
            }
            merges.add(pair);
        }
        return merges;
    }

    private static PreTokenizer preTokenizer(JsonElement json, String where) {
        if (json == null || json.isJsonNull()) throw new IllegalArgumentException(where + " is missing");
        if (!json.isJsonObject()) throw new IllegalArgumentException(where + " must be an object, found " + Json.kind(json));
        JsonObject o = json.getAsJsonObject();
        String type = field(() -> Json.requiredString(o, "type"), where + ".");
        return switch (type) {
            case "Sequence" -> {
                List<PreTokenizer> steps = new ArrayList<>();
                JsonArray list = field(() -> Json.array(o, "pretokenizers"), where + ".");
                for (int i = 0; i < list.size(); i++) steps.add(preTokenizer(list.get(i), where + ".pretokenizers[" + i + "]"));
                yield PreTokenizer.sequence(steps);
            }
            case "ByteLevel" -> PreTokenizer.byteLevel(field(() -> Json.bool(o, "add_prefix_space", true), where + "."),
                    field(() -> Json.bool(o, "use_regex", true), where + "."));
            case "Split" -> split(o, where);
            default -> throw new IllegalArgumentException(where + ".type " + type + " is not supported (Sequence, Split, ByteLevel are)");
        };
    }

    private static PreTokenizer split(JsonObject o, String where) {
        String behavior = field(() -> Json.requiredString(o, "behavior"), where + ".");
        if (!behavior.equals("Isolated") || field(() -> Json.bool(o, "invert", false), where + ".")) {
            throw new IllegalArgumentException(where + ": Split behavior " + behavior + " is not supported (BLOOM uses Isolated)");
        }
        JsonObject pattern = field(() -> Json.object(o, "pattern"), where + ".");
        String regex;
        if (Json.has(pattern, "Regex")) regex = field(() -> Json.requiredString(pattern, "Regex"), where + ".pattern.");
        else if (Json.has(pattern, "String")) regex = Pattern.quote(field(() -> Json.requiredString(pattern, "String"), where + ".pattern."));
        else throw new IllegalArgumentException(where + ".pattern needs Regex or String");
        try {
            return PreTokenizer.isolated(Pattern.compile(regex, Pattern.UNICODE_CHARACTER_CLASS));
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException(where + ".pattern.Regex is not a valid regular expression: "
                    + e.getDescription() + " near index " + e.getIndex(), e);
        }
    }

    /** Runs a field reader and puts the JSON path before its message ("model." + "field vocab ..."). */
    private static <T> T field(java.util.function.Supplier<T> read, String path) {
        try {
            return read.get();
        } catch (IllegalArgumentException e) {
            String m = e.getMessage();
            throw new IllegalArgumentException(m.startsWith("field ") ? "field " + path + m.substring(6)
                    : m.startsWith("missing field ") ? "missing field " + path + m.substring(14) : path + m, e);
        }
    }

    public long[] encode(String text) { return encodeWithOffsets(text).ids(); }

    public List<long[]> encodeBatch(List<String> texts) {
        return texts.stream().map(this::encode).toList();
    }

    public Encoding encodeWithOffsets(String text) {
        Ids out = new Ids();
        int last = 0;
        if (addedPattern != null) {
            Matcher m = addedPattern.matcher(text);
            while (m.find()) {
                encodeSpan(text.substring(last, m.start()), last, out);
                out.add(added.get(m.group()), m.start(), m.end());
                last = m.end();
            }
        }
        encodeSpan(text.substring(last), last, out);
        return out.encoding();
    }

    private void encodeSpan(String span, int offset, Ids out) {
        if (span.isEmpty()) return;
        for (PreTokenizer.Piece piece : preTokenizer.split(List.of(new PreTokenizer.Piece(span, offset)))) {
            Bpe.Word word = bpe.encode(ByteLevel.encode(piece.text()));
            int[] charOfByte = charOfByte(piece.text());
            int bytePos = 0;
            for (int i = 0; i < word.ids().length; i++) {
                int startChar = charOfByte[bytePos];
                bytePos += word.lengths()[i];
                int endChar = bytePos >= charOfByte.length ? piece.text().length() : charOfByte[bytePos];
                if (endChar == startChar) endChar = Math.min(piece.text().length(), startChar + 1);
                out.add(word.ids()[i], Math.max(offset, piece.start() + startChar), piece.start() + endChar);
            }
        }
    }

    /** Growable arrays of ids and spans: a 1 MB text is some 10⁵–10⁶ tokens, too many to box. */
    private static final class Ids {
        long[] ids = new long[64];
        int[] starts = new int[64];
        int[] ends = new int[64];
        int size;

        void add(long id, int start, int end) {
            if (size == ids.length) {
                ids = Arrays.copyOf(ids, size * 2);
                starts = Arrays.copyOf(starts, size * 2);
                ends = Arrays.copyOf(ends, size * 2);
            }
            ids[size] = id;
            starts[size] = start;
            ends[size++] = end;
        }

        Encoding encoding() {
            return new Encoding(Arrays.copyOf(ids, size), Arrays.copyOf(starts, size), Arrays.copyOf(ends, size));
        }
    }

    /** For each UTF-8 byte of {@code text}, the index of the char (UTF-16 unit) it belongs to. */
    private static int[] charOfByte(String text) {
        int[] map = new int[utf8Length(text)];
        int b = 0;
        for (int c = 0; c < text.length(); ) {
            int cp = text.codePointAt(c);
            int n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : Character.isSurrogate((char) cp) ? 1 : cp < 0x10000 ? 3 : 4;
            for (int k = 0; k < n; k++) map[b++] = c;
            c += Character.charCount(cp);
        }
        return map;
    }

    // As String.getBytes(UTF_8) counts: a lone surrogate becomes '?' there, 1 byte — match it.
    private static int utf8Length(String text) {
        return text.getBytes(StandardCharsets.UTF_8).length;
    }

    /** Text of {@code ids}, special tokens included (invalid UTF-8 becomes U+FFFD). */
    public String decode(long[] ids) { return decode(ids, false); }

    /**
     * Text of {@code ids}: added tokens verbatim, the rest byte-decoded (invalid UTF-8 becomes
     * U+FFFD). With {@code skipSpecialTokens}, tokens the file marks {@code "special": true}
     * ({@code </s>}, {@code <pad>}) are left out, as transformers' {@code skip_special_tokens=True}.
     * Ids the tokenizer does not have (a model's embedding is often padded past the vocabulary, as
     * BLOOM's 250880 rows for 250680 tokens) decode to nothing, as HF tokenizers skips them.
     */
    public String decode(long[] ids, boolean skipSpecialTokens) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        for (long id : ids) {
            if (contains(id) && !(skipSpecialTokens && isSpecial(id))) bytes.writeBytes(bytes(id));
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /** The bytes token {@code id} stands for (one token may hold part of a character). */
    public byte[] bytes(long id) {
        String token = id < 0 || id > Integer.MAX_VALUE ? null : tokens.get((int) id);
        if (token == null) throw new IllegalArgumentException("token id " + id + " is not in the tokenizer's vocabulary");
        if (added.containsKey(token)) return token.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream(token.length());
        ByteLevel.decode(token, out);
        return out.toByteArray();
    }

    /** True when the tokenizer has a token for {@code id}. */
    public boolean contains(long id) { return id >= 0 && id <= Integer.MAX_VALUE && tokens.get((int) id) != null; }

    /** True for the added tokens the file marks special. */
    public boolean isSpecial(long id) { return special.contains((int) id); }

    /** The token string of {@code id} (byte-level characters, e.g. "Ġthe"). */
    public String token(long id) { return tokens.get((int) id); }

    public Integer id(String token) { return added.containsKey(token) ? added.get(token) : bpe.id(token); }

    public int vocabSize() { return tokens.size(); }

    /** The largest token id plus one: every id the tokenizer can produce lies below it. */
    public long idBound() {
        return tokens.keySet().stream().mapToLong(Integer::longValue).max().orElse(-1) + 1;
    }
}

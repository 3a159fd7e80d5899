package org.bloomtune.serve.openai;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import org.bloomtune.generate.TokenLogprobs;
import org.bloomtune.serve.FinishReason;

import java.util.ArrayList;
import java.util.List;

/**
 * {@code POST /v1/completions}: {@code prompt} as a string, strings, token ids or lists of them,
 * continued as it is (no template); {@code logprobs} up to 5 alternatives per token. {@code echo},
 * {@code suffix} and a {@code best_of} other than {@code n} are refused.
 */
final class CompletionsEndpoint extends GenerationEndpoint {
    static final int DEFAULT_MAX_TOKENS = 16;     // OpenAI's default for completions

    CompletionsEndpoint(ServerContext server) { super(server); }

    @Override
    protected List<Prompt> prompts(JsonObject body) {
        if (Fields.bool(body, "echo", false)) throw ApiException.unsupported("echo", "'echo' is not supported");
        if (Fields.get(body, "suffix") != null) throw ApiException.unsupported("suffix", "'suffix' is not supported");
        JsonElement bestOf = Fields.get(body, "best_of");
        if (bestOf != null && Fields.integer(bestOf, "best_of", 1, 128) != Fields.integer(body, "n", 1, 1, Integer.MAX_VALUE)) {
            throw ApiException.unsupported("best_of", "'best_of' other than n is not supported");
        }
        JsonElement p = Fields.get(body, "prompt");
        if (p == null) throw ApiException.invalid("prompt", "'prompt' is required");
        List<Prompt> out = new ArrayList<>();
        if (p instanceof JsonPrimitive s && s.isString()) {
            out.add(text(s.getAsString()));
        } else if (p instanceof JsonArray a && !a.isEmpty()) {
            if (a.get(0) instanceof JsonPrimitive first && first.isNumber()) {
                out.add(ids(a));
            } else {
                for (JsonElement e : a) {
                    if (e instanceof JsonPrimitive s && s.isString()) out.add(text(s.getAsString()));
                    else if (e instanceof JsonArray ids && !ids.isEmpty()) out.add(ids(ids));
                    else throw ApiException.invalid("prompt", "'prompt' must be a string, an array of strings, or token ids");
                }
            }
        } else {
            throw ApiException.invalid("prompt", "'prompt' must be a string, an array of strings, or token ids");
        }
        return out;
    }

    private Prompt text(String s) {
        if (s.isEmpty()) throw ApiException.invalid("prompt", "'prompt' must not be empty");
        long[] ids = server.tokenizer().encode(s);
        if (ids.length == 0) throw ApiException.invalid("prompt", "'prompt' has no tokens");
        return new Prompt(s, ids);
    }

    private Prompt ids(JsonArray a) {
        long[] ids = new long[a.size()];
        for (int i = 0; i < ids.length; i++) ids[i] = Fields.integer(a.get(i), "prompt", 0, server.vocabSize() - 1);
        return new Prompt(null, ids);
    }

    @Override
    protected int maxTokens(JsonObject body) { return DEFAULT_MAX_TOKENS; }

    @Override
    protected int logprobs(JsonObject body) { return (int) Fields.integer(body, "logprobs", -1, 0, 5); }

    @Override
    protected String idPrefix() { return "cmpl-"; }

    @Override
    protected String object(boolean chunk) { return "text_completion"; }

    @Override
    protected JsonObject choice(int index, String text, List<TokenLogprobs> logprobs, boolean withLogprobs, FinishReason finish) {
        return chunkChoice(index, text, logprobs, withLogprobs, finish, false);
    }

    @Override
    protected JsonObject chunkChoice(int index, String text, List<TokenLogprobs> logprobs, boolean withLogprobs, FinishReason finish,
                                     boolean first) {
        return choiceObject(index, "text", new JsonPrimitive(text), withLogprobs ? logprobs(logprobs) : null, finish);
    }

    /** OpenAI's legacy shape: parallel arrays of tokens, their log-probabilities, alternatives and offsets. */
    private JsonObject logprobs(List<TokenLogprobs> tokens) {
        JsonArray strings = new JsonArray();
        JsonArray values = new JsonArray();
        JsonArray top = new JsonArray();
        JsonArray offsets = new JsonArray();
        int offset = 0;
        for (TokenLogprobs t : tokens) {
            String s = server.tokenText(t.token());
            strings.add(s);
            values.add(t.logprob());
            JsonObject alternatives = new JsonObject();
            for (TokenLogprobs.Alternative a : t.top()) alternatives.addProperty(server.tokenText(a.token()), a.logprob());
            top.add(alternatives);
            offsets.add(offset);
            offset += s.length();
        }
        JsonObject o = new JsonObject();
        o.add("tokens", strings);
        o.add("token_logprobs", values);
        o.add("top_logprobs", top);
        o.add("text_offset", offsets);
        return o;
    }
}

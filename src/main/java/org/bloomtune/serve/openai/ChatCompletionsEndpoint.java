package org.bloomtune.serve.openai;

import com.google.gson.JsonArray;
import com.google.gson.JsonElement;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.google.gson.JsonPrimitive;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.generate.TokenLogprobs;
import org.bloomtune.serve.FinishReason;

import java.util.List;
import java.util.Set;

/**
 * {@code POST /v1/chat/completions}: the last user message put into the seed's template
 * ({@code Human: …\n\nAssistant: }) — the format the prompts were tuned on; earlier turns and system
 * messages are not part of that format and are left out. {@code logprobs: true} with
 * {@code top_logprobs} up to 20.
 */
final class ChatCompletionsEndpoint extends GenerationEndpoint {
    private static final Set<String> ROLES = Set.of("system", "developer", "user", "assistant", "tool", "function");

    ChatCompletionsEndpoint(ServerContext server) { super(server); }

    @Override
    protected List<Prompt> prompts(JsonObject body) {
        for (String unsupported : List.of("tools", "functions", "response_format")) {
            if (Fields.get(body, unsupported) != null) throw ApiException.unsupported(unsupported, "'" + unsupported + "' is not supported");
        }
        JsonElement m = Fields.get(body, "messages");
        if (!(m instanceof JsonArray messages) || messages.isEmpty()) throw ApiException.invalid("messages", "'messages' must be a non-empty array");
        String user = null;
        for (int i = 0; i < messages.size(); i++) {
            String where = "messages[" + i + "]";
            if (!(messages.get(i) instanceof JsonObject message)) throw ApiException.invalid(where, where + " must be an object");
            String role = Fields.optionalString(message, "role");
            if (role == null || !ROLES.contains(role)) throw ApiException.invalid(where + ".role", where + ".role must be one of " + ROLES);
            String content = content(message, where);
            if (role.equals("user")) user = content;
        }
        if (user == null) throw ApiException.invalid("messages", "'messages' holds no user message");
        if (user.isEmpty()) throw ApiException.invalid("messages", "the last user message is empty");
        String prompt = PromptTemplate.SEED.prompt(user);
        return List.of(new Prompt(prompt, server.tokenizer().encode(prompt)));
    }

    /** A message's text: a string, or an array of {@code {"type": "text", "text": ...}} parts joined. */
    private static String content(JsonObject message, String where) {
        JsonElement c = Fields.get(message, "content");
        if (c == null) return "";
        if (c instanceof JsonPrimitive p && p.isString()) return p.getAsString();
        if (c instanceof JsonArray parts) {
            StringBuilder b = new StringBuilder();
            for (JsonElement part : parts) {
                if (!(part instanceof JsonObject o) || !"text".equals(Fields.optionalString(o, "type"))) {
                    throw ApiException.invalid(where + ".content", "only text content parts are supported");
                }
                b.append(Fields.requiredString(o, "text"));
            }
            return b.toString();
        }
        throw ApiException.invalid(where + ".content", where + ".content must be a string or an array of text parts");
    }

    @Override
    protected int maxTokens(JsonObject body) {
        return (int) Fields.integer(body, "max_completion_tokens", server.options().defaultChatMaxTokens(), 1, server.options().contextLength());
    }

    @Override
    protected int logprobs(JsonObject body) {
        boolean on = Fields.bool(body, "logprobs", false);
        int top = (int) Fields.integer(body, "top_logprobs", 0, 0, 20);
        if (!on && Fields.get(body, "top_logprobs") != null) throw ApiException.invalid("top_logprobs", "'top_logprobs' needs logprobs: true");
        return on ? top : -1;
    }

    @Override
    protected String idPrefix() { return "chatcmpl-"; }

    @Override
    protected String object(boolean chunk) { return chunk ? "chat.completion.chunk" : "chat.completion"; }

    @Override
    protected JsonObject choice(int index, String text, List<TokenLogprobs> logprobs, boolean withLogprobs, FinishReason finish) {
        JsonObject message = new JsonObject();
        message.addProperty("role", "assistant");
        message.addProperty("content", text);
        message.add("refusal", JsonNull.INSTANCE);
        return choiceObject(index, "message", message, withLogprobs ? logprobs(logprobs) : null, finish);
    }

    @Override
    protected JsonObject chunkChoice(int index, String text, List<TokenLogprobs> logprobs, boolean withLogprobs, FinishReason finish,
                                     boolean first) {
        JsonObject delta = new JsonObject();
        if (first) delta.addProperty("role", "assistant");
        if (finish == null || first) delta.addProperty("content", text);
        return choiceObject(index, "delta", delta, withLogprobs ? logprobs(logprobs) : null, finish);
    }

    /** The chat shape: one entry per token with its bytes and alternatives. */
    private JsonObject logprobs(List<TokenLogprobs> tokens) {
        JsonArray content = new JsonArray();
        for (TokenLogprobs t : tokens) {
            JsonObject entry = token(t.token(), t.logprob());
            JsonArray top = new JsonArray();
            for (TokenLogprobs.Alternative a : t.top()) top.add(token(a.token(), a.logprob()));
            entry.add("top_logprobs", top);
            content.add(entry);
        }
        JsonObject o = new JsonObject();
        o.add("content", content);
        o.add("refusal", JsonNull.INSTANCE);
        return o;
    }

    private JsonObject token(long id, double logprob) {
        JsonObject o = new JsonObject();
        o.addProperty("token", server.tokenText(id));
        o.addProperty("logprob", logprob);
        JsonArray bytes = new JsonArray();
        if (server.tokenizer().contains(id)) for (byte b : server.tokenizer().bytes(id)) bytes.add(b & 0xff);
        o.add("bytes", bytes);
        return o;
    }
}

package org.bloomtune.serve.openai;

import com.google.gson.JsonArray;
import com.google.gson.JsonNull;
import com.google.gson.JsonObject;
import com.sun.net.httpserver.HttpExchange;
import org.bloomtune.generate.TokenLogprobs;
import org.bloomtune.serve.Classification;
import org.bloomtune.serve.FinishReason;
import org.bloomtune.serve.GenerationRequest;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * What {@code /v1/completions} and {@code /v1/chat/completions} share: the model and sampling
 * fields, one scheduler row per prompt and choice, and the answer — whole, or streamed as
 * server-sent events as the tokens come. A classification task answers with its label's word.
 * The two endpoints differ in how the prompt is given and how choices are written.
 */
abstract class GenerationEndpoint {
    /** How often a quiet stream checks that its client is still connected. */
    private static final long HEARTBEAT_MILLIS = 500;

    protected final ServerContext server;

    GenerationEndpoint(ServerContext server) { this.server = server; }

    /** The prompts' texts (tokenized here) or token ids, from the request body. */
    protected abstract List<Prompt> prompts(JsonObject body);

    /** The field holding the new-token limit ({@code max_tokens}, or chat's {@code max_completion_tokens} too). */
    protected abstract int maxTokens(JsonObject body);

    /** How many alternatives each token's log-probabilities list; -1 for none. */
    protected abstract int logprobs(JsonObject body);

    protected abstract String idPrefix();

    protected abstract String object(boolean chunk);

    /** A whole choice. */
    /**
     * A choice as OpenAI orders its fields: {@code index}, the body ({@code text}, {@code message}
     * or {@code delta}, named {@code key}), {@code logprobs}, {@code finish_reason} (null while a
     * stream runs).
     */
    protected static JsonObject choiceObject(int index, String key, com.google.gson.JsonElement body, com.google.gson.JsonElement logprobs,
                                             FinishReason finish) {
        JsonObject c = new JsonObject();
        c.addProperty("index", index);
        c.add(key, body);
        c.add("logprobs", logprobs == null ? com.google.gson.JsonNull.INSTANCE : logprobs);
        c.add("finish_reason", finish == null ? com.google.gson.JsonNull.INSTANCE : new com.google.gson.JsonPrimitive(finish.openAiName()));
        return c;
    }

    protected abstract JsonObject choice(int index, String text, List<TokenLogprobs> logprobs, boolean withLogprobs, FinishReason finish);

    /** A streamed piece of a choice; {@code first} marks its first chunk. */
    protected abstract JsonObject chunkChoice(int index, String text, List<TokenLogprobs> logprobs, boolean withLogprobs,
                                              FinishReason finish, boolean first);

    /** A prompt as text (null when given as ids) and its token ids. */
    record Prompt(String text, long[] ids) {}

    final void handle(HttpExchange ex, JsonObject body) throws IOException {
        String model = Fields.requiredString(body, "model");
        Sampling sampling = Sampling.parse(body, "max_tokens", 0, server.options().contextLength(), server.options().maxN());
        sampling = sampling.maxTokens() == 0 ? sampling.withMaxTokens(maxTokens(body)) : sampling;
        int logprobs = logprobs(body);
        List<Prompt> prompts = prompts(body);
        if ((long) prompts.size() * sampling.n() > server.options().maxChoices()) {
            throw ApiException.invalid("n", prompts.size() + " prompts × n " + sampling.n() + " is over the server's limit of "
                    + server.options().maxChoices() + " choices per request");
        }
        Answer answer = new Answer(idPrefix() + UUID.randomUUID().toString().replace("-", ""), model, System.currentTimeMillis() / 1000,
                logprobs >= 0, prompts.stream().mapToInt(p -> p.ids().length).sum());
        if (server.bank().classifies(model)) {
            classify(ex, answer, prompts, sampling);
            return;
        }
        List<GenerationRequest> rows = new ArrayList<>();
        for (Prompt p : prompts) {
            for (int i = 0; i < sampling.n(); i++) {
                rows.add(new GenerationRequest(model, p.ids(), sampling.config(rows.size(), server.eosTokenId()), sampling.stops(), logprobs));
            }
        }
        ChoiceRun run = new ChoiceRun(server.scheduler(), rows);
        try {
            if (sampling.stream()) stream(ex, run, answer, sampling.includeUsage());
            else whole(ex, run, answer, rows.size());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IOException("interrupted", e);
        } finally {
            run.cancel();
        }
    }

    /** The response's identity and totals. */
    private static final class Answer {
        final String id;
        final String model;
        final long created;
        final boolean withLogprobs;
        final int promptTokens;
        int completionTokens;

        Answer(String id, String model, long created, boolean withLogprobs, int promptTokens) {
            this.id = id;
            this.model = model;
            this.created = created;
            this.withLogprobs = withLogprobs;
            this.promptTokens = promptTokens;
        }
    }

    private void whole(HttpExchange ex, ChoiceRun run, Answer answer, int choices) throws IOException, InterruptedException {
        StringBuilder[] texts = new StringBuilder[choices];
        List<List<TokenLogprobs>> logprobs = new ArrayList<>();
        FinishReason[] finish = new FinishReason[choices];
        for (int i = 0; i < choices; i++) {
            texts[i] = new StringBuilder();
            logprobs.add(new ArrayList<>());
        }
        for (ChoiceRun.Event e; (e = run.next(server.eventWaitMillis())) != null; ) {
            switch (e) {
                case ChoiceRun.Text t -> {
                    texts[t.choice()].append(t.text());
                    logprobs.get(t.choice()).addAll(t.logprobs());
                }
                case ChoiceRun.Finished f -> {
                    finish[f.choice()] = f.reason();
                    answer.completionTokens += f.completionTokens();
                }
                case ChoiceRun.Failed f -> throw f.error();
            }
        }
        JsonArray out = new JsonArray();
        for (int i = 0; i < choices; i++) out.add(choice(i, texts[i].toString(), logprobs.get(i), answer.withLogprobs, finish[i]));
        Exchanges.sendJson(ex, 200, response(answer, out, false));
        server.countTokens(answer.promptTokens, answer.completionTokens);
    }

    private void stream(HttpExchange ex, ChoiceRun run, Answer answer, boolean includeUsage) throws IOException, InterruptedException {
        Exchanges.EventStream events = new Exchanges.EventStream(ex);
        long started = System.nanoTime();
        boolean firstToken = true;
        java.util.Set<Integer> opened = new java.util.HashSet<>();
        try {
            long quietSince = System.nanoTime();
            while (!run.done()) {
                ChoiceRun.Event e = run.poll(HEARTBEAT_MILLIS);
                if (e == null) {
                    // Nothing to say yet (held-back text, a slow step): a comment line finds out whether the client is still there.
                    if ((System.nanoTime() - quietSince) / 1_000_000 > server.eventWaitMillis()) throw new IllegalStateException("no output in time");
                    events.comment();
                    continue;
                }
                quietSince = System.nanoTime();
                JsonObject choice = switch (e) {
                    case ChoiceRun.Text t -> chunkChoice(t.choice(), t.text(), t.logprobs(), answer.withLogprobs, null, opened.add(t.choice()));
                    case ChoiceRun.Finished f -> {
                        answer.completionTokens += f.completionTokens();
                        yield chunkChoice(f.choice(), "", List.of(), false, f.reason(), opened.add(f.choice()));
                    }
                    case ChoiceRun.Failed f -> throw f.error();
                };
                if (firstToken && e instanceof ChoiceRun.Text) {
                    server.observeFirstToken((System.nanoTime() - started) / 1e9);
                    firstToken = false;
                }
                JsonArray choices = new JsonArray();
                choices.add(choice);
                events.send(response(answer, choices, true));
            }
            if (includeUsage) events.send(response(answer, new JsonArray(), true));
            events.done();
            server.countTokens(answer.promptTokens, answer.completionTokens);
        } catch (RuntimeException e) {
            ApiException api = ServerContext.toApi(e);
            events.send(api.json());
            events.done();
        }
    }

    /** A classification task through completions: each prompt's label word, as one choice. */
    private void classify(HttpExchange ex, Answer answer, List<Prompt> prompts, Sampling sampling) throws IOException {
        List<String> texts = new ArrayList<>();
        for (Prompt p : prompts) {
            if (p.text() == null) throw ApiException.invalid("prompt", "a classification task takes text prompts, not token ids");
            texts.add(p.text());
        }
        List<Classification> results = ClassifyEndpoint.await(server.scheduler().classify(answer.model, texts), server);
        int promptTokens = results.stream().mapToInt(Classification::promptTokens).sum();
        Answer counted = new Answer(answer.id, answer.model, answer.created, false, promptTokens);
        counted.completionTokens = results.size() * sampling.n();
        JsonArray choices = new JsonArray();
        for (Classification c : results) {
            for (int i = 0; i < sampling.n(); i++) {
                choices.add(sampling.stream() ? chunkChoice(choices.size(), c.labelWord(), List.of(), false, FinishReason.STOP, true)
                        : choice(choices.size(), c.labelWord(), List.of(), false, FinishReason.STOP));
            }
        }
        if (sampling.stream()) {
            Exchanges.EventStream events = new Exchanges.EventStream(ex);
            events.send(response(counted, choices, true));
            if (sampling.includeUsage()) events.send(response(counted, new JsonArray(), true));
            events.done();
        } else {
            Exchanges.sendJson(ex, 200, response(counted, choices, false));
        }
        server.countTokens(counted.promptTokens, counted.completionTokens);
    }

    private JsonObject response(Answer a, JsonArray choices, boolean chunk) {
        JsonObject o = new JsonObject();
        o.addProperty("id", a.id);
        o.addProperty("object", object(chunk));
        o.addProperty("created", a.created);
        o.addProperty("model", a.model);
        o.add("system_fingerprint", JsonNull.INSTANCE);
        o.add("choices", choices);
        if (!chunk || choices.isEmpty()) {
            JsonObject usage = new JsonObject();
            usage.addProperty("prompt_tokens", a.promptTokens);
            usage.addProperty("completion_tokens", a.completionTokens);
            usage.addProperty("total_tokens", a.promptTokens + a.completionTokens);
            o.add("usage", usage);
        }
        return o;
    }
}

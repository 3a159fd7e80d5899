package org.bloomtune.serve.openai;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.bloomtune.serve.Classification;

import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * {@code POST /v1/classify} {@code {"model": TASK, "input": TEXT | [TEXTS]}}: each text's label and
 * every label's probability, as {@code classify} prints them, in input order.
 */
final class ClassifyEndpoint {
    private ClassifyEndpoint() {}

    static JsonObject answer(ServerContext server, JsonObject body) {
        String model = Fields.requiredString(body, "model");
        List<String> inputs = Fields.strings(body, "input", server.options().maxChoices());
        if (inputs.isEmpty()) throw ApiException.invalid("input", "'input' is required: a text or an array of texts");
        for (String s : inputs) if (s.isEmpty()) throw ApiException.invalid("input", "texts to classify must not be empty");
        List<Classification> results = await(server.scheduler().classify(model, inputs), server);
        JsonArray data = new JsonArray();
        int tokens = 0;
        for (int i = 0; i < results.size(); i++) {
            Classification c = results.get(i);
            tokens += c.promptTokens();
            JsonObject d = new JsonObject();
            d.addProperty("object", "classification");
            d.addProperty("index", i);
            d.addProperty("label", c.prediction().labelName());
            d.addProperty("word", c.labelWord());
            JsonObject probabilities = new JsonObject();
            for (int l = 0; l < c.prediction().labelNames().size(); l++) {
                probabilities.addProperty(c.prediction().labelNames().get(l), c.prediction().probabilities()[l]);
            }
            d.add("probabilities", probabilities);
            data.add(d);
        }
        JsonObject usage = new JsonObject();
        usage.addProperty("prompt_tokens", tokens);
        usage.addProperty("total_tokens", tokens);
        JsonObject o = new JsonObject();
        o.addProperty("object", "list");
        o.addProperty("model", model);
        o.add("data", data);
        o.add("usage", usage);
        server.countTokens(tokens, 0);
        return o;
    }

    static List<Classification> await(CompletableFuture<List<Classification>> f, ServerContext server) {
        try {
            return f.get(server.eventWaitMillis(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException e) {
            throw e.getCause() instanceof RuntimeException r ? r : new IllegalStateException(e.getCause());
        } catch (TimeoutException e) {
            throw new IllegalStateException("the classification did not finish in time", e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted", e);
        }
    }
}

package org.bloomtune.serve.openai;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.core.http.StreamResponse;
import com.openai.models.chat.completions.ChatCompletion;
import com.openai.models.chat.completions.ChatCompletionChunk;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.Completion;
import com.openai.models.completions.CompletionChoice;
import com.openai.models.completions.CompletionCreateParams;
import com.openai.models.models.Model;
import dev.langchain4j.model.openai.OpenAiChatModel;
import org.bloomtune.classify.Classifier;
import org.bloomtune.classify.ClassifyEncoder;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Prediction;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bytedeco.javacpp.PointerScope;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Set;
import java.util.stream.Collectors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Real clients against the server on 127.0.0.1: OpenAI's official Java client (models, plain and
 * streamed completions, chat, log-probabilities) and LangChain4j's OpenAI chat model. Every answer
 * equals what the library gives for the same task and text alone (greedy), and log-probabilities
 * equal a log-softmax of the model's own logits.
 */
class OpenAiClientTest {
    @TempDir
    static Path dir;
    static ServerFixture f;
    static OpenAIClient client;

    @BeforeAll
    static void start() {
        f = new ServerFixture(dir);
        client = OpenAIOkHttpClient.builder().baseUrl(f.server.baseUri().toString()).apiKey("not-needed").maxRetries(0)
                .timeout(Duration.ofSeconds(120)).build();
    }

    @AfterAll
    static void stop() {
        client.close();
        f.close();
    }

    @Test
    void listsTheBankAndTheBareModel() {
        Set<String> ids = client.models().list().data().stream().map(Model::id).collect(Collectors.toSet());
        assertEquals(Set.of("bloom-tiny", "poem", "chat", "story", "title", "sentiment"), ids);
    }

    @Test
    void completionsEqualTheLibraryAloneForEveryTask() {
        for (String task : List.of("poem", "chat", "story", "title", "bloom-tiny")) {
            Completion c = client.completions().create(CompletionCreateParams.builder().model(task).prompt("春天来了").maxTokens(12)
                    .temperature(0.0).build());
            CompletionChoice choice = c.choices().getFirst();
            assertEquals(f.aloneText(task, "春天来了", 12), choice.text(), task);
            assertEquals(f.alone(task, "春天来了", 12).length, c.usage().orElseThrow().completionTokens(), task);
            assertEquals(CompletionChoice.FinishReason.LENGTH, choice.finishReason());
        }
    }

    @Test
    void streamedCompletionArrivesInPiecesThatMakeTheSameText() {
        CompletionCreateParams params = CompletionCreateParams.builder().model("poem").prompt("今天天气很好").maxTokens(16).temperature(0.0).build();
        StringBuilder text = new StringBuilder();
        int chunks = 0;
        String[] finish = {null};
        try (StreamResponse<Completion> stream = client.completions().createStreaming(params)) {
            for (Completion chunk : (Iterable<Completion>) stream.stream()::iterator) {
                for (CompletionChoice c : chunk.choices()) {
                    text.append(c.text());
                    chunks++;
                    c._finishReason().asKnown().ifPresent(reason -> finish[0] = reason.asString());
                }
            }
        }
        assertEquals(f.aloneText("poem", "今天天气很好", 16), text.toString());
        assertTrue(chunks > 2, "streamed in pieces: " + chunks);
        assertEquals("length", finish[0]);
    }

    @Test
    void chatPutsTheLastUserMessageIntoTheSeedTemplate() {
        String expected = f.aloneText("chat", PromptTemplate.SEED.prompt("你好，介绍一下你自己"), 10);
        ChatCompletion c = client.chat().completions().create(ChatCompletionCreateParams.builder().model("chat")
                .addSystemMessage("ignored by the seed's single-turn format").addUserMessage("你好，介绍一下你自己")
                .maxCompletionTokens(10).temperature(0.0).build());
        assertEquals(expected, c.choices().getFirst().message().content().orElseThrow());

        StringBuilder streamed = new StringBuilder();
        try (StreamResponse<ChatCompletionChunk> stream = client.chat().completions().createStreaming(ChatCompletionCreateParams.builder()
                .model("chat").addUserMessage("你好，介绍一下你自己").maxCompletionTokens(10).temperature(0.0).build())) {
            stream.stream().forEach(chunk -> chunk.choices().forEach(ch -> ch.delta().content().ifPresent(streamed::append)));
        }
        assertEquals(expected, streamed.toString());

        OpenAiChatModel langchain = OpenAiChatModel.builder().baseUrl(f.server.baseUri().toString()).apiKey("not-needed").modelName("chat")
                .temperature(0.0).maxTokens(10).timeout(Duration.ofSeconds(120)).build();
        assertEquals(expected, langchain.chat("你好，介绍一下你自己"));
    }

    @Test
    void classifyEqualsTheClassifierAndCompletionsAnswerWithTheLabelWord() throws Exception {
        List<String> texts = List.of("房间干净，服务热情，下次还来", "太吵了，再也不来", "一般般");
        ServerFixture.Reply r = f.post("/v1/classify", "{\"model\": \"sentiment\", \"input\": [\"" + String.join("\", \"", texts) + "\"]}");
        assertEquals(200, r.status(), r.body());
        JsonArray data = r.json().getAsJsonArray("data");
        Verbalizer v = Verbalizer.load(f.bankDir.resolve("sentiment/verbalizer.json"));
        ClassifyEncoder encoder = new ClassifyEncoder(f.tokenizer, LabelWords.encode(v, f.tokenizer, f.model.config().vocabSize()), 256);
        try (PeftAdapter.Loaded adapter = PeftAdapter.load(f.bankDir.resolve("sentiment"), f.model.config())) {
            for (int i = 0; i < texts.size(); i++) {
                Prediction p = new Classifier(f.model).predict(adapter.prompt(), List.of(encoder.ids(texts.get(i))), encoder.words()).getFirst();
                JsonObject got = data.get(i).getAsJsonObject();
                assertEquals(p.labelName(), got.get("label").getAsString());
                for (int l = 0; l < p.labelNames().size(); l++) {
                    double served = got.getAsJsonObject("probabilities").get(p.labelNames().get(l)).getAsDouble();
                    assertEquals(p.probabilities()[l], served, 1e-6, "text " + i + " label " + l);
                }
                Completion c = client.completions().create(CompletionCreateParams.builder().model("sentiment").prompt(texts.get(i)).build());
                assertEquals(v.labels().get(p.labelName()).getFirst(), c.choices().getFirst().text());
            }
        }
    }

    @Test
    void logprobsAreTheLogSoftmaxOfTheModelsOwnLogits() {
        Completion c = client.completions().create(CompletionCreateParams.builder().model("poem").prompt("春天来了").maxTokens(6).temperature(0.0)
                .logprobs(3L).build());
        CompletionChoice.Logprobs lp = c.choices().getFirst().logprobs().orElseThrow();
        long[] prompt = f.tokenizer.encode("春天来了");
        long[] generated = f.alone("poem", "春天来了", 6);
        long[] all = new long[prompt.length + generated.length];
        System.arraycopy(prompt, 0, all, 0, prompt.length);
        System.arraycopy(generated, 0, all, prompt.length, generated.length);
        try (PeftAdapter.Loaded adapter = PeftAdapter.load(f.bankDir.resolve("poem"), f.model.config());
             GradMode off = GradMode.off(); PointerScope scope = new PointerScope();
             CausalLmOutput out = f.model.forward(PromptedInput.of(f.model, adapter.prompt(), Tensors.fromLongs(all, 1, all.length), null, null))) {
            int virtual = adapter.prompt().numVirtualTokens();
            float[] logits = Tensors.toFloats(out.logits());
            int vocab = f.model.config().vocabSize();
            for (int k = 0; k < generated.length; k++) {
                int position = virtual + prompt.length - 1 + k;     // the logits that chose token k
                double max = Double.NEGATIVE_INFINITY;
                for (int v = 0; v < vocab; v++) max = Math.max(max, logits[position * vocab + v]);
                double sum = 0;
                for (int v = 0; v < vocab; v++) sum += Math.exp(logits[position * vocab + v] - max);
                double expected = logits[position * vocab + (int) generated[k]] - max - Math.log(sum);
                assertEquals(expected, lp.tokenLogprobs().orElseThrow().get(k), 1e-4, "token " + k);
                // Greedy: the best alternative is the chosen token (alternatives with the same text share a key).
                var top = lp.topLogprobs().orElseThrow().get(k)._additionalProperties();
                assertTrue(!top.isEmpty() && top.size() <= 3, "up to three alternatives: " + top);
                double best = top.values().stream().mapToDouble(value -> value.convert(Double.class)).max().orElseThrow();
                assertEquals(expected, best, 1e-4, "token " + k + ": the top alternative");
            }
        }
    }
}

package org.bloomtune.examples;

import com.openai.client.OpenAIClient;
import com.openai.client.okhttp.OpenAIOkHttpClient;
import com.openai.models.chat.completions.ChatCompletionCreateParams;
import com.openai.models.completions.CompletionCreateParams;
import org.bloomtune.demo.DemoBank;
import org.bloomtune.model.BloomModel;
import org.bloomtune.serve.PromptBank;
import org.bloomtune.serve.ServedBank;
import org.bloomtune.serve.openai.OpenAiServer;
import org.bloomtune.tokenizer.Tokenizer;

import java.nio.file.Path;

/**
 * A prompt bank behind an OpenAI-compatible server, in this process, and OpenAI's own Java client
 * talking to it: each task is a "model". The demo bank's prompts are untrained; a real bank holds
 * the adapters {@code PromptTuning.train} wrote.
 */
public final class ServeOverHttp {
    public static void main(String[] args) {
        Path bankDir = Path.of(args.length > 0 ? args[0] : "out/examples/served-bank");
        Path modelDir = Path.of("models/bloom-tiny");
        Tokenizer tokenizer = Tokenizer.load(modelDir.resolve("tokenizer.json"));
        try (BloomModel model = BloomModel.load(modelDir)) {
            DemoBank.write(model, tokenizer, bankDir);                       // tasks poem, chat, story, title, sentiment
            try (ServedBank bank = new ServedBank(model, tokenizer, PromptBank.load(bankDir, model.config()), "bloom-tiny", 256);
                 OpenAiServer server = OpenAiServer.start(model, tokenizer, bank, OpenAiServer.Options.defaults().withPort(0))) {
                OpenAIClient client = OpenAIOkHttpClient.builder().baseUrl(server.baseUri().toString()).apiKey("unused").build();
                var poem = client.completions().create(CompletionCreateParams.builder()
                        .model("poem").prompt("春天来了").maxTokens(12).temperature(0.0).build());
                System.out.println("poem: " + poem.choices().getFirst().text());
                var chat = client.chat().completions().create(ChatCompletionCreateParams.builder()
                        .model("chat").addUserMessage("你好").maxCompletionTokens(12).temperature(0.0).build());
                System.out.println("chat: " + chat.choices().getFirst().message().content().orElse(""));
                System.out.println("sentiment: " + client.completions().create(CompletionCreateParams.builder()
                        .model("sentiment").prompt("房间干净，服务热情").build()).choices().getFirst().text());
                client.close();
            }
        }
    }
}

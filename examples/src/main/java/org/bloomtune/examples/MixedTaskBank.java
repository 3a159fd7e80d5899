package org.bloomtune.examples;

import org.bloomtune.classify.Verbalizer;
import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.serve.MultiTaskServer;
import org.bloomtune.serve.PromptBank;
import org.bloomtune.serve.TaskRequest;
import org.bloomtune.serve.TaskResponse;
import org.bloomtune.tokenizer.Tokenizer;

import java.nio.file.Path;
import java.util.List;

/**
 * One frozen model, two tasks: a prompt bank with a sentiment classifier and a chat prompt, saved
 * as PEFT adapter directories, loaded back, and asked a mixed batch. The prompts here are freshly
 * initialised; in practice each comes from {@code PromptTuning.train}.
 */
public final class MixedTaskBank {
    public static void main(String[] args) {
        Path bankDir = Path.of(args.length > 0 ? args[0] : "out/examples/bank");
        Path modelDir = Path.of("models/bloom-tiny");
        Tokenizer tokenizer = Tokenizer.load(modelDir.resolve("tokenizer.json"));
        try (BloomModel model = BloomModel.load(modelDir)) {
            try (PromptBank bank = new PromptBank()) {
                AdapterConfig chat = AdapterConfig.forModel(model.config(), 10, PromptInit.TEXT, "这是一段人与助手的对话：", modelDir.toString());
                bank.put("chat", chat, SoftPrompt.init(model, chat, tokenizer, 0));
                AdapterConfig sentiment = AdapterConfig.forModel(model.config(), 8, PromptInit.RANDOM, null, modelDir.toString());
                bank.put("sentiment", sentiment, SoftPrompt.init(model, sentiment, tokenizer, 1),
                        Verbalizer.load(Path.of("models/verbalizers/sentiment-zh.json")));
                bank.save(bankDir);
            }
            try (PromptBank bank = PromptBank.load(bankDir, model.config())) {
                MultiTaskServer server = new MultiTaskServer(model, tokenizer, bank, GenerationConfig.greedy(12, model.config().eosTokenId()), 128);
                List<TaskResponse> answers = server.serve(List.of(
                        new TaskRequest("sentiment", "房间很干净"),
                        new TaskRequest("chat", "Human: 你好\n\nAssistant: "),
                        new TaskRequest("sentiment", "服务太差了")));
                for (TaskResponse r : answers) {
                    System.out.println(r.request().task() + ": " + (r.isClassification() ? r.prediction().labelName() : r.generated()));
                }
            }
        }
    }
}

package org.bloomtune.demo;

import org.bloomtune.classify.Verbalizer;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.serve.PromptBank;
import org.bloomtune.tokenizer.Tokenizer;

import java.nio.file.Path;

/**
 * A three-task prompt bank for any BLOOM, untrained but distinct, for serving demos, tests and load
 * runs: {@code poem} (8 virtual tokens from a text), {@code chat} (10 tokens sampled from the
 * vocabulary) and {@code sentiment} (10 tokens from a text, classifying with the shipped Chinese
 * sentiment verbalizer). Different virtual-token counts make the scheduler prefill in groups.
 */
public final class DemoBank {
    public static final String SENTIMENT_VERBALIZER = "models/verbalizers/sentiment-zh.json";

    private DemoBank() {}

    public static Path write(BloomModel model, Tokenizer tokenizer, Path dir) {
        try (PromptBank bank = new PromptBank()) {
            put(bank, "poem", model, tokenizer, AdapterConfig.forModel(model.config(), 8, PromptInit.TEXT, "写一首关于春天的诗：", null), null);
            put(bank, "chat", model, tokenizer, AdapterConfig.forModel(model.config(), 10, PromptInit.SAMPLE_VOCAB, null, null), null);
            Verbalizer sentiment = Verbalizer.load(Path.of(SENTIMENT_VERBALIZER));
            put(bank, "sentiment", model, tokenizer,
                    AdapterConfig.forModel(model.config(), 10, PromptInit.TEXT, "判断这条评论的情感是好还是差：", null), sentiment);
            bank.save(dir);
        }
        AtomicFiles.writeString(dir.resolve("README.md"), "A demo prompt bank written by org.bloomtune.demo.DemoBank (untrained prompts).\n");
        return dir;
    }

    private static void put(PromptBank bank, String name, BloomModel model, Tokenizer tokenizer, AdapterConfig config, Verbalizer verbalizer) {
        bank.put(name, config, SoftPrompt.init(model, config, tokenizer, 7), verbalizer);
    }
}

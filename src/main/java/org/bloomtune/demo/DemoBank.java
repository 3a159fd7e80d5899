package org.bloomtune.demo;

import org.bloomtune.classify.Verbalizer;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.EncoderConfig;
import org.bloomtune.peft.EncoderType;
import org.bloomtune.peft.PeftType;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.serve.PromptBank;
import org.bloomtune.tokenizer.Tokenizer;

import java.nio.file.Path;

/**
 * A five-task prompt bank for any BLOOM, untrained but distinct, for serving demos, tests and load
 * runs: {@code poem} (prompt tuning, 8 virtual tokens from a text), {@code chat} (10 tokens sampled
 * from the vocabulary), {@code story} (P-tuning, 10 tokens from an LSTM encoder), {@code title}
 * (prefix tuning with projection, 8 positions) and {@code sentiment} (10 tokens from a text,
 * classifying with the shipped Chinese sentiment verbalizer). Different virtual-token counts and
 * types make the scheduler prefill in groups and decode them together.
 */
public final class DemoBank {
    public static final String SENTIMENT_VERBALIZER = "models/verbalizers/sentiment-zh.json";

    private DemoBank() {}

    public static Path write(BloomModel model, Tokenizer tokenizer, Path dir) {
        try (PromptBank bank = new PromptBank()) {
            put(bank, "poem", model, tokenizer, AdapterConfig.forModel(model.config(), 8, PromptInit.TEXT, "写一首关于春天的诗：", null), null);
            put(bank, "chat", model, tokenizer, AdapterConfig.forModel(model.config(), 10, PromptInit.SAMPLE_VOCAB, null, null), null);
            put(bank, "story", model, tokenizer, AdapterConfig.withEncoder(model.config(), PeftType.P_TUNING, 10,
                    EncoderConfig.pTuning(EncoderType.LSTM, model.config().hiddenSize() / 2), null), null);
            put(bank, "title", model, tokenizer, AdapterConfig.withEncoder(model.config(), PeftType.PREFIX_TUNING, 8,
                    EncoderConfig.prefix(true, model.config().hiddenSize() / 2), null), null);
            Verbalizer sentiment = Verbalizer.load(Path.of(SENTIMENT_VERBALIZER));
            put(bank, "sentiment", model, tokenizer,
                    AdapterConfig.forModel(model.config(), 10, PromptInit.TEXT, "判断这条评论的情感是好还是差：", null), sentiment);
            bank.save(dir);
        }
        AtomicFiles.writeString(dir.resolve("README.md"), "A demo prompt bank written by org.bloomtune.demo.DemoBank (untrained prompts).\n");
        return dir;
    }

    private static void put(PromptBank bank, String name, BloomModel model, Tokenizer tokenizer, AdapterConfig config, Verbalizer verbalizer) {
        SoftPrompt live = SoftPrompt.init(model, config, tokenizer, 7);
        if (live.encoder() == null) {
            bank.put(name, config, live, verbalizer);                  // the bank owns it now
            return;
        }
        try (live) {
            bank.put(name, config, live.fold(), verbalizer);           // served as PEFT saves it: the encoder's output
        }
    }
}

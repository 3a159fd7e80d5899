package org.bloomtune.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.Reference;
import org.bloomtune.io.SafetensorsFile;
import org.bloomtune.io.TorchBinWriter;
import org.bloomtune.tensor.DType;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.global.torch.ScalarType;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * A checkpoint laid out as Langboat/bloom-1b4-zh ships it — every config field it has
 * ({@code pretraining_tp: 2}, {@code seq_length}, {@code torch_dtype: "float32"}, unk/bos/eos/pad
 * 0/1/2/3, ...), a float32 {@code pytorch_model.bin} with the {@code transformer.} prefix and
 * {@code lm_head.weight} stored as a tensor of its own although the config ties it — at the embedded
 * model's tiny dimensions: it loads with the same logits, trains and generates.
 */
class LangboatCheckpointTest {
    static final Path TINY = Path.of("models/bloom-tiny");

    @TempDir
    Path dir;

    @Test
    void loadsTrainsAndGenerates() throws IOException {
        Path model = langboatShaped(dir.resolve("langboat"), false);
        Reference.assertSameLogitsOnIds(model, TINY, new long[]{1, 57, 300, 1024, 7, 2});
        CliTest.Run train = CliTest.run("train", "--model", model.toString(), "--data", "models/demo-data/alpaca_zh_demo_first300.json",
                "--output", dir.resolve("run").toString(), "--max-steps", "3", "--batch-size", "2", "--max-length", "64", "--eval-split", "0");
        assertEquals(0, train.code(), train.err());
        CliTest.Run gen = CliTest.run("generate", "--model", model.toString(), "--adapter", dir.resolve("run/adapter").toString(),
                "--prompt", "Human: 你好\\n\\nAssistant: ", "--max-new-tokens", "5");
        assertEquals(0, gen.code(), gen.err());
        assertEquals(5, gen.lastLine().split(",").length);
        Path exact = langboatShaped(dir.resolve("exact"), true);
        Reference.assertSameLogitsOnIds(exact, TINY, new long[]{1, 57, 300});
    }

    /** bloom-tiny's weights in Langboat's files: fp32 .bin, prefixed names, a separate lm_head, Langboat's config fields. */
    static Path langboatShaped(Path out, boolean slowButExact) throws IOException {
        Files.createDirectories(out);
        JsonObject tiny = JsonParser.parseString(Files.readString(TINY.resolve("config.json"))).getAsJsonObject();
        JsonObject c = JsonParser.parseString("""
                {"apply_residual_connection_post_layernorm": false, "architectures": ["BloomForCausalLM"], "attention_dropout": 0.0,
                 "attention_softmax_in_fp32": true, "bias_dropout_fusion": true, "bos_token_id": 1, "eos_token_id": 2,
                 "hidden_dropout": 0.0, "initializer_range": 0.02, "layer_norm_epsilon": 1e-05, "masked_softmax_fusion": true,
                 "model_type": "bloom", "n_inner": null, "offset_alibi": 100, "pad_token_id": 3, "pretraining_tp": 2,
                 "seq_length": 4096, "skip_bias_add": true, "skip_bias_add_qkv": false, "slow_but_exact": false,
                 "torch_dtype": "float32", "transformers_version": "4.27.1", "unk_token_id": 0, "use_cache": true}""").getAsJsonObject();
        for (String k : List.of("hidden_size", "n_head", "n_layer", "vocab_size")) c.add(k, tiny.get(k));
        c.addProperty("slow_but_exact", slowButExact);
        Files.writeString(out.resolve("config.json"), c.toString());
        Files.copy(TINY.resolve("tokenizer.json"), out.resolve("tokenizer.json"));
        List<Tensor> keep = new ArrayList<>();
        try (SafetensorsFile f = SafetensorsFile.open(TINY.resolve("model.safetensors"))) {
            TorchBinWriter w = new TorchBinWriter().folder("pytorch_model");
            for (String n : f.names()) {
                Tensor t = f.tensor(n).to(ScalarType.Float);
                keep.add(t);
                w.tensor(n.startsWith("transformer.") ? n : "transformer." + n, t);
            }
            Tensor head = f.tensor(f.contains("transformer.word_embeddings.weight") ? "transformer.word_embeddings.weight" : "word_embeddings.weight")
                    .to(ScalarType.Float).clone();
            keep.add(head);
            w.storage("lm_head", DType.F32, head.numel(), () -> head.contiguous())
                    .view("lm_head.weight", "lm_head", 0, head.sizes().vec().get(), new long[]{head.size(1), 1});
            w.write(out.resolve("pytorch_model.bin"));
        } finally {
            keep.forEach(Tensor::close);
        }
        return out;
    }

    @Test
    void fixtureHasEveryLangboatField() throws IOException {
        Path model = langboatShaped(dir.resolve("m"), false);
        JsonObject c = JsonParser.parseString(Files.readString(model.resolve("config.json"))).getAsJsonObject();
        assertEquals(2, c.get("pretraining_tp").getAsInt());
        assertEquals(4096, c.get("seq_length").getAsInt());
        assertEquals("float32", c.get("torch_dtype").getAsString());
        assertTrue(Files.exists(model.resolve("pytorch_model.bin")) && !Files.exists(model.resolve("model.safetensors")));
    }
}

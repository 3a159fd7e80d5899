package org.bloomtune.model;

import org.bloomtune.demo.RandomCheckpoint;

import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.Batch;
import org.bloomtune.data.Example;
import org.bloomtune.data.ExampleEncoder;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The embedded default in models/bloom-tiny: `init-model --like tiny --storage fp16 --seed 0`, then
 * `pretrain` on the demo data (models/README.md). The config files are reproduced byte for byte;
 * the weights are checked by what pretraining did to them.
 */
class EmbeddedModelTest {
    static final Path EMBEDDED = Path.of("models/bloom-tiny");

    @Test
    void embeddedDefaultIsTheTinyShapeTrainedOnTheDemoData(@TempDir Path dir) throws IOException {
        RandomCheckpoint.write(ModelShapes.named("tiny"), dir, DType.F16, 0);
        for (String file : new String[]{"config.json", "generation_config.json"}) {
            assertArrayEquals(Files.readAllBytes(EMBEDDED.resolve(file)), Files.readAllBytes(dir.resolve(file)), file);
        }
        Files.copy(EMBEDDED.resolve("tokenizer.json"), dir.resolve("tokenizer.json"));
        double trained = demoLoss(EMBEDDED);
        double random = demoLoss(dir);
        System.out.printf("loss on 32 demo records: embedded %.3f, its random init %.3f%n", trained, random);
        assertTrue(trained < random - 2.0, "embedded " + trained + " vs random init " + random);
    }

    static double demoLoss(Path modelDir) {
        Tokenizer tok = Tokenizer.load(modelDir.resolve("tokenizer.json"));
        var records = AlpacaReader.read(Path.of("models/demo-data/alpaca_zh_demo_first300.json"), false).records().subList(0, 32);
        try (BloomModel model = BloomModel.load(modelDir); GradMode off = GradMode.off()) {
            assertEquals(ModelShapes.named("tiny"), model.config());
            ExampleEncoder encoder = new ExampleEncoder(tok, new PromptTemplate("{instruction}\n{input}\n{output}"), 128, 2, true);
            List<Example> examples = records.stream().map(encoder::encode).toList();
            try (Batch b = Batch.collate(examples, 3);
                 CausalLmOutput out = model.forward(CausalLmInput.ids(b.inputIds()).mask(b.attentionMask()).labels(b.labels()))) {
                return Tensors.toDouble(out.loss());
            }
        }
    }
}

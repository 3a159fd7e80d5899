package org.bloomtune.examples;

import org.bloomtune.generate.GenerationConfig;
import org.bloomtune.generate.GenerationResult;
import org.bloomtune.generate.Generator;
import org.bloomtune.generate.TextStream;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.model.LoadOptions;
import org.bloomtune.tensor.DType;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tokenizer.Tokenizer;
import org.bytedeco.pytorch.Tensor;

import java.nio.file.Path;
import java.util.List;

/** The model as HF's BloomForCausalLM: logits and loss for a batch, then streamed greedy decoding. */
public final class ForwardAndGenerate {
    public static void main(String[] args) {
        Path modelDir = Path.of("models/bloom-tiny");
        Tokenizer tokenizer = Tokenizer.load(modelDir.resolve("tokenizer.json"));
        try (BloomModel model = BloomModel.load(modelDir, new LoadOptions(DType.F32, "cpu"))) {
            long[] text = tokenizer.encode("保持健康的三个建议");
            // Logits [1, T, V] and HF's shifted cross-entropy (attention_mask and labels are optional).
            try (Tensor ids = Tensors.fromLongs(text, 1, text.length);
                 CausalLmOutput out = model.forward(CausalLmInput.ids(ids).labels(ids))) {
                System.out.println("loss " + Tensors.toFloat(out.loss()) + ", logits " + Tensors.shapeString(out.logits()));
            }
            // KV-cache generation; prompts of different lengths are left-padded; text streams as it comes.
            List<long[]> prompts = List.of(tokenizer.encode("Human: 你好\n\nAssistant: "), text);
            TextStream stream = new TextStream(tokenizer, prompts.size(), List.of("\n\nHuman:"),
                    (row, chunk) -> System.out.print(row == 0 ? chunk : ""));
            GenerationResult result = new Generator(model).generate(prompts,
                    GenerationConfig.sampling(20, 0.9, 40, 1.0, model.config().eosTokenId(), 3), stream);
            stream.finish();
            System.out.println();
            System.out.println("row 1: " + stream.text(1) + " (ids " + result.idsLine(1) + ")");
        }
    }
}

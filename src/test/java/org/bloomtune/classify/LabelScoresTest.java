package org.bloomtune.classify;

import org.bloomtune.Reference;
import org.bloomtune.autograd.PromptBackward;
import org.bloomtune.autograd.ReversePass;
import org.bloomtune.model.BloomModel;
import org.bloomtune.model.CausalLmInput;
import org.bloomtune.model.CausalLmOutput;
import org.bloomtune.peft.PromptedInput;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tensor.GradMode;
import org.bloomtune.tensor.Tensors;
import org.bloomtune.tokenizer.Tokenizer;
import org.bytedeco.javacpp.PointerScope;
import org.bytedeco.pytorch.Tensor;
import org.bytedeco.pytorch.TensorVector;
import org.bytedeco.pytorch.global.torch;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Label scores, their loss and its prompt gradient against a second implementation: run the
 * whole model on "pattern + word" for every word separately, take log_softmax of the full logits
 * and average the word's token log-probabilities by hand — no shared rows, no position tricks.
 */
class LabelScoresTest {
    static final Path MODEL = Path.of("models/bloom-tiny");
    static BloomModel model;
    static Tokenizer tok;
    // Single- and multi-token words (the emoji and the long phrase take several tokens).
    static final Verbalizer V = new Verbalizer("评论：{text}。总之很", Map.of("积极", List.of("好", "🙂"), "消极", List.of("差", "糟糕透顶的体验")),
            Map.of(), "test verbalizer");
    static final List<String> TEXTS = List.of("房间很干净，服务也好", "太吵了，再也不来", "一般般");

    @BeforeAll
    static void load() {
        model = BloomModel.load(MODEL);
        tok = Tokenizer.load(MODEL.resolve("tokenizer.json"));
    }

    @AfterAll
    static void close() { model.close(); }

    @Test
    void scoresEqualWholeSequenceLogProbabilities() {
        LabelWords words = LabelWords.encode(V, tok, model.config().vocabSize());
        assertTrue(words.longestWord() > 1, "the test needs a multi-token word");
        ClassifyEncoder encoder = new ClassifyEncoder(tok, words, 64);
        List<long[]> patterns = TEXTS.stream().map(encoder::ids).toList();
        try (SoftPrompt prompt = SoftPrompt.random(4, model.config().hiddenSize(), 3)) {
            List<Prediction> fast = new Classifier(model).predict(prompt, patterns, words);
            for (int n = 0; n < patterns.size(); n++) {
                double[] expected = referenceScores(prompt, patterns.get(n), words);
                for (int l = 0; l < expected.length; l++) {
                    assertEquals(expected[l], fast.get(n).scores()[l], 1e-4, "text " + n + " label " + l);
                }
            }
        }
    }

    @Test
    void zeroShotScoresWithoutAPromptToo() {
        LabelWords words = LabelWords.encode(V, tok, model.config().vocabSize());
        ClassifyEncoder encoder = new ClassifyEncoder(tok, words, 64);
        List<long[]> patterns = TEXTS.stream().map(encoder::ids).toList();
        List<Prediction> fast = new Classifier(model).predict(null, patterns, words);
        for (int n = 0; n < patterns.size(); n++) {
            double[] expected = referenceScores(null, patterns.get(n), words);
            for (int l = 0; l < expected.length; l++) assertEquals(expected[l], fast.get(n).scores()[l], 1e-4, "text " + n + " label " + l);
        }
    }

    @ParameterizedTest
    @EnumSource(value = ReversePass.class, names = "AUTO", mode = EnumSource.Mode.EXCLUDE)   // the two passes; AUTO picks one of them
    void lossGradientEqualsAutogradThroughWholeSequences(ReversePass pass) {
        LabelWords words = LabelWords.encode(V, tok, model.config().vocabSize());
        ClassifyEncoder encoder = new ClassifyEncoder(tok, words, 64);
        List<long[]> patterns = TEXTS.stream().map(encoder::ids).toList();
        long[] gold = {0, 1, 1};
        try (SoftPrompt prompt = SoftPrompt.random(4, model.config().hiddenSize(), 5)) {
            float loss;
            try (VerbalizedBatch batch = VerbalizedBatch.of(patterns, Collections.nCopies(3, words), model.config().padTokenId());
                 PointerScope s = new PointerScope()) {
                prompt.zeroGrad();
                CausalLmInput in = PromptedInput.of(model, Collections.nCopies((int) batch.rows(), prompt), batch.inputIds(), batch.attentionMask(), null);
                loss = PromptBackward.lossAndGrad(model, in, new VerbalizerLoss(batch, gold), pass);
            }
            float[] grad = Tensors.toFloats(prompt.grad());
            prompt.zeroGrad();
            double expectedLoss;
            try (PointerScope s = new PointerScope(); GradMode on = GradMode.on()) {
                List<Tensor> losses = new ArrayList<>();
                for (int n = 0; n < 3; n++) {
                    Tensor scores = torch.stack(new TensorVector(referenceScoreTensors(prompt, patterns.get(n), words).toArray(new Tensor[0])), 0);
                    losses.add(torch.log_softmax(scores, 0).select(0, gold[n]).neg());
                }
                Tensor mean = torch.stack(new TensorVector(losses.toArray(new Tensor[0])), 0).mean();
                mean.backward();
                expectedLoss = Tensors.toDouble(mean);
            }
            float[] expected = Tensors.toFloats(prompt.grad());
            double err = Reference.relativeMaxDiff(expected, grad);
            System.out.printf("%s: verbalizer loss %.6f vs %.6f, gradient rel. diff %.2e%n", pass, loss, expectedLoss, err);
            assertEquals(expectedLoss, loss, 1e-5);
            assertTrue(err <= 1e-4, "gradient differs by " + err);
        }
    }

    /** P-tuning and prefix tuning classify and differentiate as the whole-sequence reference does, on both passes. */
    @ParameterizedTest
    @org.junit.jupiter.params.provider.ValueSource(strings = {"p-tuning", "prefix"})
    void otherPromptTypesScoreAndDifferentiateAsWholeSequences(String method) {
        LabelWords words = LabelWords.encode(V, tok, model.config().vocabSize());
        ClassifyEncoder encoder = new ClassifyEncoder(tok, words, 64);
        List<long[]> patterns = TEXTS.stream().map(encoder::ids).toList();
        long[] gold = {0, 1, 1};
        int hidden = model.config().hiddenSize();
        org.bloomtune.peft.AdapterConfig config = method.equals("p-tuning")
                ? org.bloomtune.peft.AdapterConfig.withEncoder(model.config(), org.bloomtune.peft.PeftType.P_TUNING, 4,
                        org.bloomtune.peft.EncoderConfig.pTuning(org.bloomtune.peft.EncoderType.LSTM, 16), null)
                : org.bloomtune.peft.AdapterConfig.withEncoder(model.config(), org.bloomtune.peft.PeftType.PREFIX_TUNING, 4,
                        org.bloomtune.peft.EncoderConfig.prefix(true, hidden / 2), null);
        try (SoftPrompt prompt = SoftPrompt.init(model, config, null, 5)) {
            List<Prediction> fast = new Classifier(model).predict(prompt, patterns, words);
            for (int n = 0; n < patterns.size(); n++) {
                double[] expected = referenceScores(prompt, patterns.get(n), words);
                for (int l = 0; l < expected.length; l++) assertEquals(expected[l], fast.get(n).scores()[l], 1e-4, method + " text " + n + " label " + l);
            }
            prompt.zeroGrad();
            try (PointerScope s = new PointerScope(); GradMode on = GradMode.on()) {
                List<Tensor> losses = new ArrayList<>();
                for (int n = 0; n < 3; n++) {
                    Tensor scores = torch.stack(new TensorVector(referenceScoreTensors(prompt, patterns.get(n), words).toArray(new Tensor[0])), 0);
                    losses.add(torch.log_softmax(scores, 0).select(0, gold[n]).neg());
                }
                torch.stack(new TensorVector(losses.toArray(new Tensor[0])), 0).mean().backward();
            }
            float[] expected = Tensors.toFloats(prompt.grad());
            for (ReversePass pass : new ReversePass[]{ReversePass.AUTOGRAD, ReversePass.RECOMPUTE_BLOCKS}) {
                prompt.zeroGrad();
                try (VerbalizedBatch batch = VerbalizedBatch.of(patterns, Collections.nCopies(3, words), model.config().padTokenId());
                     PointerScope s = new PointerScope()) {
                    CausalLmInput in = PromptedInput.of(model, Collections.nCopies((int) batch.rows(), prompt), batch.inputIds(), batch.attentionMask(), null);
                    PromptBackward.lossAndGrad(model, in, new VerbalizerLoss(batch, gold), pass);
                }
                double err = Reference.relativeMaxDiff(expected, Tensors.toFloats(prompt.grad()));
                assertTrue(err <= 1e-4, method + " " + pass + ": gradient differs by " + err);
            }
        }
    }

    @Test
    void mixedBatchOfTasksEqualsEachTaskAlone() {
        Verbalizer other = new Verbalizer("问题：{text}\n回答：", Map.of("是", List.of("是"), "否", List.of("不是"), "不知道", List.of("不知道")),
                Map.of(), "second task");
        LabelWords a = LabelWords.encode(V, tok, model.config().vocabSize());
        LabelWords b = LabelWords.encode(other, tok, model.config().vocabSize());
        ClassifyEncoder ea = new ClassifyEncoder(tok, a, 64);
        ClassifyEncoder eb = new ClassifyEncoder(tok, b, 64);
        try (SoftPrompt pa = SoftPrompt.random(4, model.config().hiddenSize(), 1);
             SoftPrompt pb = SoftPrompt.random(4, model.config().hiddenSize(), 2)) {
            Classifier c = new Classifier(model);
            List<Prediction> alone = new ArrayList<>(c.predict(pa, List.of(ea.ids(TEXTS.get(0)), ea.ids(TEXTS.get(1))), a));
            alone.addAll(c.predict(pb, List.of(eb.ids("这是真的吗")), b));
            List<Prediction> mixed = c.predict(List.of(pa, pb, pa), List.of(ea.ids(TEXTS.get(0)), eb.ids("这是真的吗"), ea.ids(TEXTS.get(1))),
                    List.of(a, b, a));
            int[] order = {0, 2, 1};
            for (int k = 0; k < 3; k++) {
                Prediction x = mixed.get(k), y = alone.get(order[k]);
                assertEquals(y.labelNames(), x.labelNames());
                for (int l = 0; l < x.scores().length; l++) assertEquals(y.scores()[l], x.scores()[l], 1e-5);
            }
        }
    }

    /** Each label's score as a recorded scalar, from full forwards of pattern + word. */
    private static List<Tensor> referenceScoreTensors(SoftPrompt prompt, long[] pattern, LabelWords words) {
        List<Tensor> out = new ArrayList<>();
        for (int l = 0; l < words.numLabels(); l++) {
            List<Tensor> wordScores = new ArrayList<>();
            for (int w = 0; w < words.numWords(l); w++) {
                long[] word = words.word(l, w);
                long[] seq = new long[pattern.length + word.length];
                System.arraycopy(pattern, 0, seq, 0, pattern.length);
                System.arraycopy(word, 0, seq, pattern.length, word.length);
                Tensor ids = Tensors.fromLongs(seq, 1, seq.length);
                CausalLmOutput o = model.forward(prompt == null ? CausalLmInput.ids(ids) : PromptedInput.of(model, prompt, ids, null, null));
                Tensor logp = torch.log_softmax(o.logits().select(0, 0), 1);                 // [N + T, V]
                int virtual = prompt == null || !prompt.type().entersEmbeddings() ? 0 : prompt.numVirtualTokens();   // a prefix adds no logits
                Tensor sum = null;
                for (int j = 0; j < word.length; j++) {
                    Tensor v = logp.select(0, virtual + pattern.length - 1 + j).select(0, word[j]);
                    sum = sum == null ? v : sum.add(v);
                }
                wordScores.add(sum.div(new org.bytedeco.pytorch.Scalar((double) word.length)));
            }
            out.add(torch.stack(new TensorVector(wordScores.toArray(new Tensor[0])), 0).mean());
        }
        return out;
    }

    private static double[] referenceScores(SoftPrompt prompt, long[] pattern, LabelWords words) {
        try (PointerScope s = new PointerScope(); GradMode off = GradMode.off()) {
            return referenceScoreTensors(prompt, pattern, words).stream().mapToDouble(Tensors::toDouble).toArray();
        }
    }
}

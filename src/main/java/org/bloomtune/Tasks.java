package org.bloomtune;

import org.bloomtune.classify.ClassificationMetrics;
import org.bloomtune.classify.ClassificationTask;
import org.bloomtune.classify.ClassifyEncoder;
import org.bloomtune.classify.ClassifyExample;
import org.bloomtune.classify.ClassifyRecord;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.data.AlpacaRecord;
import org.bloomtune.data.Example;
import org.bloomtune.data.ExampleEncoder;
import org.bloomtune.data.Packing;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.CausalLmTask;
import org.bloomtune.train.TrainingTask;

import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The two prompt-tuning tasks. Each holds its records and options; evaluation data is given
 * explicitly ({@code eval(records)}) or as the tail share of the records ({@code evalSplit(0.05)});
 * by default there is none.
 */
public final class Tasks {
    private Tasks() {}

    /** The seed recipe: Alpaca instructions rendered by a template, loss on the response. */
    public static Instructions instructions(List<AlpacaRecord> records) { return new Instructions(records); }

    /** Classification through a verbalizer's pattern and label words, loss over the label scores. */
    public static Classification classification(List<ClassifyRecord> records, Verbalizer verbalizer) {
        return new Classification(records, verbalizer);
    }

    /** Options of {@link #instructions}: template (the seed's), max length (256), loss on the response only, no packing, padding-free batches. */
    public static final class Instructions implements TaskSpec {
        private final Split<AlpacaRecord> records;
        private PromptTemplate template = PromptTemplate.SEED;
        private int maxLength = 256;
        private boolean lossOnPrompt;
        private boolean packing;
        private boolean paddingFree = true;

        private Instructions(List<AlpacaRecord> records) {
            this.records = new Split<>(records);
        }

        public Instructions template(PromptTemplate t) { template = java.util.Objects.requireNonNull(t); return this; }

        /** Tokens per example (template included); longer examples are cut. */
        public Instructions maxLength(int n) {
            if (n < 2) throw new IllegalArgumentException("max_length must be at least 2, got " + n);
            maxLength = n;
            return this;
        }

        /** Take the loss on the whole text, not only the response. */
        public Instructions lossOnPrompt(boolean v) { lossOnPrompt = v; return this; }

        /**
         * Pack several training examples into each row of up to max length tokens ({@link Packing}):
         * a batch then holds fewer pad tokens, and an epoch fewer steps. Each record attends only to
         * itself and the prompt, so it computes what it would alone. Evaluation stays unpacked.
         */
        public Instructions packing(boolean v) { packing = v; return this; }

        /**
         * False: every example in a row of its own, padded to the batch's longest, as transformers'
         * collators do. True (the default): a batch's examples in as few rows as fit within its longest
         * where that changes no loss term ({@link Packing#withinBatch}) — the same examples per step and
         * the same loss, fewer pad tokens computed.
         */
        public Instructions paddingFree(boolean v) { paddingFree = v; return this; }

        public Instructions eval(List<AlpacaRecord> evalRecords) { records.eval(evalRecords); return this; }

        public Instructions evalSplit(double share) { records.split(share); return this; }

        @Override
        public Prepared<Example> prepare(BloomModel model, Tokenizer tokenizer) {
            ExampleEncoder encoder = new ExampleEncoder(tokenizer, template, maxLength, model.config().eosTokenId(), lossOnPrompt);
            List<Example> encoded = records.train().stream().map(encoder::encode).toList();
            List<Example> train = packing ? Packing.pack(encoded, maxLength) : encoded;
            List<Example> eval = records.eval().stream().map(encoder::encode).toList();
            return new Prepared<>() {
                private final CausalLmTask task = new CausalLmTask(model, paddingFree);

                @Override public TrainingTask<Example> task() { return task; }
                @Override public List<Example> train() { return train; }
                @Override public List<Example> eval() { return eval; }
                @Override public String finish(SoftPrompt prompt, Path adapter, int batchSize) { return ""; }
            };
        }
    }

    /** Options of {@link #classification}: max length of a pattern (256). */
    public static final class Classification implements TaskSpec {
        private final Split<ClassifyRecord> records;
        private final Verbalizer verbalizer;
        private int maxLength = 256;

        private Classification(List<ClassifyRecord> records, Verbalizer verbalizer) {
            this.records = new Split<>(records);
            this.verbalizer = java.util.Objects.requireNonNull(verbalizer);
        }

        /** Tokens per pattern; longer texts are cut. */
        public Classification maxLength(int n) {
            if (n < 2) throw new IllegalArgumentException("max_length must be at least 2, got " + n);
            maxLength = n;
            return this;
        }

        public Classification eval(List<ClassifyRecord> evalRecords) { records.eval(evalRecords); return this; }

        public Classification evalSplit(double share) { records.split(share); return this; }

        @Override
        public Prepared<ClassifyExample> prepare(BloomModel model, Tokenizer tokenizer) {
            LabelWords words = LabelWords.encode(verbalizer, tokenizer, model.config().vocabSize());
            ClassifyEncoder encoder = new ClassifyEncoder(tokenizer, words, maxLength);
            List<ClassifyExample> train = records.train().stream().map(encoder::encode).toList();     // unknown labels fail here
            List<ClassifyExample> eval = records.eval().stream().map(encoder::encode).toList();
            ClassificationTask task = new ClassificationTask(model, words);
            return new Prepared<>() {
                @Override public TrainingTask<ClassifyExample> task() { return task; }
                @Override public List<ClassifyExample> train() { return train; }
                @Override public List<ClassifyExample> eval() { return eval; }

                /** Saves the verbalizer beside the adapter and reports accuracy against the majority class. */
                @Override
                public String finish(SoftPrompt prompt, Path adapter, int batchSize) {
                    AtomicFiles.writeString(adapter.resolve(Verbalizer.FILE), verbalizer.toJson());
                    int batch = Math.max(batchSize, 16);
                    ClassificationMetrics onTrain = task.score(prompt, train, batch).metrics();
                    String report = String.format(Locale.ROOT, "train: %s (majority class %.4f)", onTrain.summary(), onTrain.majorityAccuracy(onTrain));
                    if (eval.isEmpty()) return report;
                    ClassificationMetrics onEval = task.score(prompt, eval, batch).metrics();
                    return report + String.format(Locale.ROOT, "%neval:  %s (majority class of train: %.4f)%n%s", onEval.summary(),
                            onEval.majorityAccuracy(onTrain), onEval.confusionTable()).stripTrailing();
                }
            };
        }
    }

    /** Records, and where the evaluation records come from. */
    private static final class Split<R> {
        private final List<R> all;
        private List<R> eval = List.of();
        private double share;

        Split(List<R> records) {
            if (records == null || records.isEmpty()) throw new IllegalArgumentException("no training records");
            all = List.copyOf(records);
        }

        void eval(List<R> records) {
            eval = List.copyOf(records);
            share = 0;
        }

        void split(double s) {
            if (!(s >= 0 && s < 1)) throw new IllegalArgumentException("eval_split must lie in [0, 1), got " + s);
            share = s;
            eval = List.of();
        }

        List<R> train() { return all.subList(0, kept()); }

        List<R> eval() { return share > 0 ? all.subList(kept(), all.size()) : eval; }

        private int kept() {
            int kept = all.size() - (int) Math.round(all.size() * share);
            if (kept < 1) throw new IllegalArgumentException("eval_split " + share + " leaves no training records of " + all.size());
            return kept;
        }
    }
}

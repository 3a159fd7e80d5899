package org.bloomtune.cli;

import com.google.gson.JsonObject;
import org.bloomtune.classify.ClassificationMetrics;
import org.bloomtune.classify.Classifier;
import org.bloomtune.classify.ClassifyEncoder;
import org.bloomtune.classify.ClassifyReader;
import org.bloomtune.classify.ClassifyRecord;
import org.bloomtune.classify.LabelWords;
import org.bloomtune.classify.Prediction;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.model.BloomModel;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.io.ProgressBar;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/** Classifies texts with a verbalizer, behind a trained soft prompt (or none: zero-shot). */
@Command(name = "classify", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = {"Classify texts through a verbalizer: each text goes into the pattern and the label whose words are "
                + "most likely next wins. Prints one JSON line per text (label, probabilities).",
                "With --file of labelled texts, also prints accuracy, macro-F1 and the confusion matrix."})
final class ClassifyCommand implements Runnable {
    @Mixin
    ModelOptions modelOptions;

    @Option(names = "--tokenizer", paramLabel = "tokenizer.json", description = "tokenizer file (default: MODEL/tokenizer.json)") Path tokenizer;
    @Option(names = "--adapter", paramLabel = "DIR", description = "a prompt-tuning adapter (default: none, zero-shot)") Path adapter;
    @Option(names = "--verbalizer", paramLabel = "V.json|SPEC",
            description = "verbalizer file or inline spec like 积极→好，消极→差 (default: ADAPTER/verbalizer.json)") String verbalizer;
    @Option(names = "--text", paramLabel = "TEXT", description = "a text to classify; repeatable") List<String> texts;
    @Option(names = "--file", paramLabel = "FILE", description = "texts to classify: TSV text[<TAB>label] or JSON/JSONL {text[, label]}") Path file;
    @Option(names = "--output", paramLabel = "FILE", description = "write the JSON lines here instead of stdout") Path output;
    @Option(names = "--batch-size", defaultValue = "16", paramLabel = "B", description = "texts scored together") int batchSize;
    @Option(names = "--max-length", defaultValue = "256", paramLabel = "N", description = "tokens per pattern; longer texts are cut") int maxLength;

    @Override
    public void run() {
        if ((texts == null) == (file == null)) throw new IllegalArgumentException("give --text or --file (not both)");
        if (batchSize < 1) throw new IllegalArgumentException("--batch-size must be at least 1, got " + batchSize);
        Verbalizer v = verbalizer();
        List<ClassifyRecord> records = file != null ? ClassifyReader.read(file, false) : fromArguments();
        Tokenizer tok = Tokenizer.load(tokenizer != null ? tokenizer : modelOptions.dir().resolve("tokenizer.json"));
        try (BloomModel model = modelOptions.loadForInference();
             PeftAdapter.Loaded a = adapter == null ? null : PeftAdapter.loadFolded(adapter, model.config())) {
            LabelWords words = LabelWords.encode(v, tok, model.config().vocabSize());
            ClassifyEncoder encoder = new ClassifyEncoder(tok, words, maxLength);
            List<Prediction> predictions = predict(model, a == null ? null : a.prompt(), encoder, records);
            write(records, predictions);
            if (records.stream().allMatch(r -> r.label() != null)) report(v, records, predictions);
        }
    }

    private Verbalizer verbalizer() {
        if (verbalizer != null) return Verbalizer.fromArgument(verbalizer);
        if (adapter != null && Files.isRegularFile(adapter.resolve(Verbalizer.FILE))) return Verbalizer.load(adapter.resolve(Verbalizer.FILE));
        throw new IllegalArgumentException("--verbalizer is needed" + (adapter == null ? "" : " (" + adapter + " has no " + Verbalizer.FILE + ")"));
    }

    private List<ClassifyRecord> fromArguments() {
        List<ClassifyRecord> out = new ArrayList<>();
        for (int i = 0; i < texts.size(); i++) {
            if (texts.get(i).isBlank()) throw new IllegalArgumentException("--text " + (i + 1) + " is empty");
            out.add(new ClassifyRecord(texts.get(i).replace("\\n", "\n"), null, "--text " + (i + 1)));
        }
        return out;
    }

    private List<Prediction> predict(BloomModel model, SoftPrompt prompt, ClassifyEncoder encoder, List<ClassifyRecord> records) {
        Classifier classifier = new Classifier(model);
        ProgressBar progress = records.size() > batchSize ? ProgressBar.forStream(System.err, records.size()) : null;
        List<Prediction> out = new ArrayList<>(records.size());
        for (int i = 0; i < records.size(); i += batchSize) {
            List<long[]> ids = records.subList(i, Math.min(records.size(), i + batchSize)).stream().map(r -> encoder.ids(r.text())).toList();
            out.addAll(classifier.predict(prompt, ids, encoder.words()));
            if (progress != null) progress.update(out.size(), "texts");
        }
        return out;
    }

    private void write(List<ClassifyRecord> records, List<Prediction> predictions) {
        try (PrintStream out = output == null ? null : new PrintStream(Files.newOutputStream(output), false, java.nio.charset.StandardCharsets.UTF_8)) {
            PrintStream target = out == null ? System.out : out;
            for (int n = 0; n < records.size(); n++) target.println(json(records.get(n), predictions.get(n)));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot write " + output + ": " + e.getMessage(), e);
        }
    }

    static String json(ClassifyRecord record, Prediction p) {
        JsonObject o = new JsonObject();
        o.addProperty("text", record.text());
        o.addProperty("label", p.labelName());
        o.add("probabilities", p.probabilitiesJson());
        if (record.label() != null) o.addProperty("gold", record.label());
        return new com.google.gson.GsonBuilder().disableHtmlEscaping().create().toJson(o);
    }

    private static void report(Verbalizer v, List<ClassifyRecord> records, List<Prediction> predictions) {
        int[] gold = new int[records.size()];
        int[] predicted = new int[records.size()];
        for (int n = 0; n < gold.length; n++) {
            gold[n] = v.labelIndex(records.get(n).label(), records.get(n).where());
            predicted[n] = predictions.get(n).label();
        }
        ClassificationMetrics m = ClassificationMetrics.of(v.labelNames(), gold, predicted);
        System.err.printf(Locale.ROOT, "%s (majority class %.4f)%n%s", m.summary(), m.majorityAccuracy(m), m.confusionTable());
    }
}

package org.bloomtune.cli;

import com.google.gson.JsonObject;
import com.google.gson.JsonParser;
import org.bloomtune.Reference;
import org.bloomtune.classify.Verbalizer;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.peft.AdapterConfig;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.PromptInit;
import org.bloomtune.peft.SoftPrompt;
import org.junit.jupiter.api.BeforeAll;
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
 * {@code train --task classify}, {@code classify}, {@code bank} and {@code serve} on the embedded
 * model and real ChnSentiCorp reviews: the commands agree with each other, a mixed batch of tasks
 * answers exactly what each task answers alone, and bad verbalizers are named.
 */
class ClassifyCliTest {
    static final String MODEL = "models/bloom-tiny";
    static final String VERBALIZER = "models/verbalizers/sentiment-zh.json";

    @TempDir
    static Path dir;
    static Path trainFile;
    static Path testFile;
    static Path adapter;
    static CliTest.Run training;

    @BeforeAll
    static void trainASmallClassifier() throws IOException {
        List<String> lines = Files.readAllLines(Reference.chnSentiCorpTrain());
        trainFile = dir.resolve("train.tsv");
        testFile = dir.resolve("test.tsv");
        Files.write(trainFile, lines.subList(0, 48));
        Files.write(testFile, lines.subList(48, 72));
        training = CliTest.run("train", "--task", "classify", "--verbalizer", VERBALIZER, "--model", MODEL, "--data", trainFile.toString(),
                "--eval-data", testFile.toString(), "--output", dir.resolve("run").toString(), "--epochs", "2", "--batch-size", "8",
                "--lr", "3e-2", "--max-length", "96");
        adapter = dir.resolve("run/adapter");
    }

    @Test
    void trainingReportsAccuracyBesideTheMajorityBaselineAndSavesTheVerbalizer() {
        assertEquals(0, training.code(), training.err());
        assertTrue(training.out().contains("eval at step 0: loss"), training.out());
        assertTrue(training.out().contains("gold \\ predicted"), "confusion matrix printed: " + training.out());
        assertTrue(training.out().matches("(?s).*train: accuracy 0\\.\\d+, macro-F1 .* \\(majority class 0\\.\\d+\\).*"), training.out());
        assertTrue(training.out().contains("eval:  accuracy"), training.out());
        assertEquals(Verbalizer.load(Path.of(VERBALIZER)).labels(), Verbalizer.load(adapter.resolve(Verbalizer.FILE)).labels());
    }

    @Test
    void classifyFileAgreesWithItsOwnReportAndWithSingleTexts() throws IOException {
        CliTest.Run r = CliTest.run("classify", "--model", MODEL, "--adapter", adapter.toString(), "--file", testFile.toString(), "--batch-size", "5");
        assertEquals(0, r.code(), r.err());
        List<JsonObject> rows = r.out().lines().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
        assertEquals(24, rows.size());
        int right = 0;
        for (JsonObject o : rows) {
            double sum = o.getAsJsonObject("probabilities").entrySet().stream().mapToDouble(e -> e.getValue().getAsDouble()).sum();
            assertEquals(1.0, sum, 2e-4);
            String gold = o.get("gold").getAsString().equals("positive") ? "积极" : "消极";
            if (gold.equals(o.get("label").getAsString())) right++;
        }
        assertTrue(r.err().contains(String.format(java.util.Locale.ROOT, "accuracy %.4f", right / 24.0)), r.err());
        // The same texts one at a time (batch of 1, no padding) get the same answers.
        String first = rows.get(0).get("text").getAsString();
        String second = rows.get(1).get("text").getAsString();
        CliTest.Run single = CliTest.run("classify", "--model", MODEL, "--adapter", adapter.toString(), "--text", first, "--text", second,
                "--batch-size", "1");
        assertEquals(0, single.code(), single.err());
        List<JsonObject> alone = single.out().lines().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
        for (int k = 0; k < 2; k++) {
            assertEquals(rows.get(k).get("label"), alone.get(k).get("label"));
            assertEquals(rows.get(k).getAsJsonObject("probabilities"), alone.get(k).getAsJsonObject("probabilities"));
        }
    }

    @Test
    void serveAnswersAMixedBatchOfTasksAsEachTaskAlone() throws IOException {
        Path chat = dir.resolve("chat-adapter");
        try (SoftPrompt p = SoftPrompt.random(10, 128, 7)) {
            PeftAdapter.save(chat, AdapterConfig.forModel(BloomConfig.read(Path.of(MODEL, "config.json")), 10, PromptInit.RANDOM, null, MODEL), p);
        }
        Path bank = dir.resolve("bank");
        CliTest.Run added = CliTest.run("bank", bank.toString(), "--add", "sentiment=" + adapter, "--add", "chat=" + chat);
        assertEquals(0, added.code(), added.err());
        assertTrue(added.out().contains("sentiment") && added.out().contains("classify [积极, 消极]") && added.out().contains("generate"), added.out());

        List<String> reviews = Files.readAllLines(testFile).stream().limit(3).map(l -> l.split("\t")[0]).toList();
        List<String> requests = new ArrayList<>();
        requests.add(request("sentiment", reviews.get(0)));
        requests.add(request("chat", "Human: 你好\n\nAssistant:"));
        requests.add(request("sentiment", reviews.get(1)));
        requests.add(request("chat", "Human: 介绍一下北京\n\nAssistant:"));
        requests.add(request("sentiment", reviews.get(2)));
        Path file = dir.resolve("requests.jsonl");
        Files.write(file, requests);
        CliTest.Run served = CliTest.run("serve", "--model", MODEL, "--bank", bank.toString(), "--requests", file.toString(),
                "--batch-size", "5", "--max-new-tokens", "6");
        assertEquals(0, served.code(), served.err());
        List<JsonObject> out = served.out().lines().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
        assertEquals(5, out.size());

        CliTest.Run classified = CliTest.run("classify", "--model", MODEL, "--adapter", adapter.toString(),
                "--text", reviews.get(0), "--text", reviews.get(1), "--text", reviews.get(2));
        List<JsonObject> alone = classified.out().lines().map(l -> JsonParser.parseString(l).getAsJsonObject()).toList();
        int[] sentimentRows = {0, 2, 4};
        for (int k = 0; k < 3; k++) {
            assertEquals(alone.get(k).get("label"), out.get(sentimentRows[k]).get("label"));
            assertEquals(alone.get(k).getAsJsonObject("probabilities"), out.get(sentimentRows[k]).getAsJsonObject("probabilities"));
        }
        CliTest.Run generated = CliTest.run("generate", "--model", MODEL, "--adapter", chat.toString(), "--max-new-tokens", "6",
                "--prompt", "Human: 你好\\n\\nAssistant:", "--prompt", "Human: 介绍一下北京\\n\\nAssistant:");
        assertEquals(0, generated.code(), generated.err());
        String[] lines = generated.out().strip().split("\n");
        assertEquals(lines[lines.length - 2], ids(out.get(1)), "first chat request");
        assertEquals(lines[lines.length - 1], ids(out.get(3)), "second chat request");
    }

    @Test
    void badVerbalizersAndLabelsExitWithTwoAndAMessage() throws IOException {
        Path empty = dir.resolve("empty.json");
        Files.writeString(empty, "{\"labels\": {\"积极\": [], \"消极\": [\"差\"]}}");
        Path unknown = dir.resolve("unknown.json");
        Files.writeString(unknown, "{\"labels\": {\"积极\": \"好\", \"消极\": \"差\"}}");
        Path out = dir.resolve("bad-run");
        assertBad(CliTest.run("classify", "--model", MODEL, "--verbalizer", empty.toString(), "--text", "好"), "label '积极' has an empty word list");
        assertBad(CliTest.run("train", "--task", "classify", "--verbalizer", unknown.toString(), "--model", MODEL,
                "--data", trainFile.toString(), "--output", out.toString()), "unknown label 'positive'");
        assertBad(CliTest.run("train", "--task", "classify", "--model", MODEL, "--data", trainFile.toString(), "--output", out.toString()),
                "--task classify needs --verbalizer");
        assertBad(CliTest.run("train", "--task", "sort", "--model", MODEL, "--data", trainFile.toString(), "--output", out.toString()),
                "--task must be lm or classify");
        assertBad(CliTest.run("train", "--task", "classify", "--verbalizer", unknown.toString(), "--packing", "--model", MODEL,
                "--data", trainFile.toString(), "--output", out.toString()), "--packing applies to --task lm");
        assertBad(CliTest.run("train", "--task", "classify", "--verbalizer", unknown.toString(), "--padded-batches", "--model", MODEL,
                "--data", trainFile.toString(), "--output", out.toString()), "--padded-batches applies to --task lm");
        assertBad(CliTest.run("classify", "--model", MODEL, "--verbalizer", "积极好", "--text", "好"), "not an inline verbalizer");
        assertBad(CliTest.run("classify", "--model", MODEL, "--text", "好"), "--verbalizer is needed");
        Path requests = dir.resolve("bad-requests.jsonl");
        Files.writeString(requests, "{\"task\": \"nope\", \"text\": \"x\"}\n");
        CliTest.run("bank", dir.resolve("bank2").toString(), "--add", "sentiment=" + adapter);
        assertBad(CliTest.run("serve", "--model", MODEL, "--bank", dir.resolve("bank2").toString(), "--requests", requests.toString()),
                "line 1: unknown task 'nope' (the bank has [sentiment])");
    }

    /** generate's ids line for a served generation. */
    private static String ids(JsonObject served) {
        List<String> ids = new ArrayList<>();
        served.getAsJsonArray("generated_ids").forEach(e -> ids.add(e.getAsString()));
        return String.join(",", ids);
    }

    private static String request(String task, String text) {
        JsonObject o = new JsonObject();
        o.addProperty("task", task);
        o.addProperty("text", text);
        return o.toString();
    }

    private static void assertBad(CliTest.Run r, String message) {
        assertEquals(2, r.code(), "exit code; stderr: " + r.err());
        assertTrue(r.err().contains(message), "expected '" + message + "' in: " + r.err());
    }
}

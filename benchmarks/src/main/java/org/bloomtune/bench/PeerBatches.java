package org.bloomtune.bench;

import com.google.gson.JsonArray;
import com.google.gson.JsonObject;
import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.AlpacaRecord;
import org.bloomtune.data.BatchOrder;
import org.bloomtune.data.Example;
import org.bloomtune.data.ExampleEncoder;
import org.bloomtune.data.PromptTemplate;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.model.BloomConfig;
import org.bloomtune.tokenizer.Tokenizer;
import org.bloomtune.train.TrainConfig;

import java.nio.file.Path;
import java.util.List;

/**
 * The seed recipe's first batches as {@code train} forms them — the same records, template, cut,
 * labels and seeded order — written as JSON lines for the Python peer ({@code benchmarks/peer/}), so
 * both sides train on the same examples, step by step. One line a step:
 * {@code {"step": s, "examples": [{"input_ids": [...], "labels": [...]}, ...]}}, unpadded; the peer
 * pads them as its collator does.
 * {@code PeerBatches MODEL_DIR OUT.jsonl [STEPS]}: the data and tokenizer of {@link RealDataProbe}.
 */
public final class PeerBatches {
    private static final int MAX_LENGTH = 256;
    private static final int BATCH = 4;

    public static void main(String[] args) {
        if (args.length < 2) throw new IllegalArgumentException("usage: PeerBatches MODEL_DIR OUT.jsonl [STEPS]");
        write(Path.of(args[0]), Path.of(args[1]), args.length > 2 ? Integer.parseInt(args[2]) : 6);
        System.err.println("wrote the first batches to " + args[1]);
    }

    /** The first {@code steps} batches for the checkpoint in {@code model}, one JSON line each. */
    static void write(Path model, Path out, int steps) {
        List<List<Example>> batches = batches(model, steps);
        StringBuilder text = new StringBuilder();
        for (int s = 0; s < batches.size(); s++) text.append(line(s + 1, batches.get(s))).append('\n');
        AtomicFiles.writeString(out, text.toString());
    }

    /** The examples of the first {@code steps} batches of epoch 0, as the trainer picks them. */
    static List<List<Example>> batches(Path model, int steps) {
        List<AlpacaRecord> records = AlpacaReader.read(Path.of(RealDataProbe.DATA), false).records();
        long eos = BloomConfig.read(model.resolve("config.json")).eosTokenId();
        ExampleEncoder encoder = new ExampleEncoder(Tokenizer.load(Path.of(RealDataProbe.TOKENIZER)), PromptTemplate.SEED, MAX_LENGTH, eos, false);
        List<Example> examples = records.stream().map(encoder::encode).toList();
        long seed = TrainConfig.builder().build().seed();
        List<List<Integer>> order = new BatchOrder(BATCH, seed, false).epoch(examples, 0);
        return order.subList(0, Math.min(steps, order.size())).stream().map(b -> b.stream().map(examples::get).toList()).toList();
    }

    private static String line(int step, List<Example> batch) {
        JsonObject o = new JsonObject();
        o.addProperty("step", step);
        JsonArray examples = new JsonArray();
        for (Example e : batch) {
            JsonObject x = new JsonObject();
            x.add("input_ids", array(e.ids()));
            x.add("labels", array(e.labels()));
            examples.add(x);
        }
        o.add("examples", examples);
        return o.toString();
    }

    private static JsonArray array(long[] values) {
        JsonArray a = new JsonArray();
        for (long v : values) a.add(v);
        return a;
    }
}

package org.bloomtune.cli;

import org.bloomtune.data.AlpacaReader;
import org.bloomtune.data.AlpacaRecord;
import org.bloomtune.io.AtomicFiles;
import org.bloomtune.tokenizer.BpeTrainer;
import org.bloomtune.tokenizer.Tokenizer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Trains a small byte-level BPE with BLOOM's pipeline, e.g. for the embedded default model. */
@Command(name = "train-tokenizer", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = "Train a byte-level BPE (BLOOM's pre-tokenizer, special tokens <unk> <s> </s> <pad>) on Alpaca "
                + "JSON files or plain text files and write a HuggingFace tokenizer.json.")
final class TrainTokenizerCommand implements Runnable {
    @Option(names = "--data", required = true, paramLabel = "FILE", description = "Alpaca JSON (instruction/input/output) or .txt; repeatable")
    List<Path> data;

    @Option(names = "--vocab-size", defaultValue = "4096", paramLabel = "N", description = "tokens in the vocabulary (special tokens and the 256 bytes included)")
    int vocabSize;

    @Option(names = "--output", required = true, paramLabel = "tokenizer.json", description = "file to write")
    Path output;

    @Override
    public void run() {
        List<String> corpus = new ArrayList<>();
        for (Path file : data) corpus.addAll(texts(file));
        String json = BpeTrainer.train(corpus, vocabSize);
        AtomicFiles.writeString(output, json);
        Tokenizer check = Tokenizer.load(output);
        System.out.printf("wrote %s: %d tokens from %d texts%n", output, check.vocabSize(), corpus.size());
    }

    /** Alpaca JSON/JSONL through the data pipeline's reader (bad rows skipped), anything else as plain text. */
    private static List<String> texts(Path file) {
        String name = file.getFileName().toString();
        if (name.endsWith(".json") || name.endsWith(".jsonl")) {
            List<String> out = new ArrayList<>();
            for (AlpacaRecord r : AlpacaReader.read(file, true).records()) {
                out.add(r.instruction());
                out.add(r.input());
                out.add(r.output());
            }
            return out;
        }
        return List.of(org.bloomtune.io.TextFiles.readUtf8(file));
    }
}

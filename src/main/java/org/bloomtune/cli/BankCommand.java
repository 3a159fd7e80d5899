package org.bloomtune.cli;

import org.bloomtune.classify.Verbalizer;
import org.bloomtune.peft.PeftAdapter;
import org.bloomtune.peft.SoftPrompt;
import org.bloomtune.serve.PromptBank;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/** Builds and lists a prompt bank: named adapters, one per task. */
@Command(name = "bank", mixinStandardHelpOptions = true, showDefaultValues = true,
        description = "Add trained adapters to a prompt bank (a directory of PEFT adapter directories, one per task) and list it. "
                + "An adapter with a verbalizer.json is a classification task.")
final class BankCommand implements Runnable {
    @Parameters(index = "0", paramLabel = "BANK_DIR", description = "the bank directory (created by the first --add)") Path dir;

    @Option(names = "--add", paramLabel = "NAME=ADAPTER_DIR", description = "copy an adapter into the bank under NAME; repeatable")
    List<String> add;

    @Override
    public void run() {
        try (PromptBank bank = Files.isDirectory(dir) && hasTasks() ? PromptBank.load(dir, null) : new PromptBank()) {
            if (add != null) {
                for (String spec : add) put(bank, spec);
                bank.save(dir);
            }
            if (bank.names().isEmpty()) throw new IllegalArgumentException(dir + ": the bank has no tasks (add some with --add NAME=ADAPTER_DIR)");
            for (String name : bank.names()) {
                System.out.printf("%-20s %3d virtual tokens  %s%n", name, bank.config(name).numVirtualTokens(),
                        bank.verbalizer(name).map(v -> "classify " + v.labelNames()).orElse("generate"));
            }
        }
    }

    private boolean hasTasks() {
        try (var children = Files.list(dir)) {
            return children.anyMatch(p -> Files.isRegularFile(p.resolve(org.bloomtune.peft.AdapterConfig.FILE)));
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException("cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    private static void put(PromptBank bank, String spec) {
        int eq = spec.indexOf('=');
        if (eq <= 0 || eq == spec.length() - 1) throw new IllegalArgumentException("--add " + spec + ": expected NAME=ADAPTER_DIR");
        String name = spec.substring(0, eq);
        Path adapter = Path.of(spec.substring(eq + 1));
        PeftAdapter.Loaded a = PeftAdapter.loadFolded(adapter);
        Path v = adapter.resolve(Verbalizer.FILE);
        SoftPrompt prompt = a.prompt();
        try {
            bank.put(name, a.config(), prompt, Files.isRegularFile(v) ? Verbalizer.load(v) : null);
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
    }
}

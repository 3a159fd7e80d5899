package org.bloomtune;

import org.bloomtune.examples.ClassifyReviews;
import org.bloomtune.examples.ForwardAndGenerate;
import org.bloomtune.examples.PTuningAndPrefix;
import org.bloomtune.examples.MixedTaskBank;
import org.bloomtune.examples.PromptGradient;
import org.bloomtune.examples.ServeOverHttp;
import org.bloomtune.examples.TuneAndGenerate;
import org.bloomtune.peft.PeftAdapter;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The README's Java code is the examples/ programs, verbatim, and each of them runs on the embedded
 * default model and does what it says.
 */
class ExamplesTest {
    static final Path EXAMPLES = Path.of("examples/src/main/java/org/bloomtune/examples");

    @TempDir
    Path dir;

    @Test
    void everyJavaBlockOfTheReadmeIsAnExampleVerbatimAndEveryExampleIsShown() throws IOException {
        String readme = Files.readString(Path.of("README.md"));
        Matcher m = Pattern.compile("```java\\n(.*?)```", Pattern.DOTALL).matcher(readme);
        List<String> blocks = new ArrayList<>();
        while (m.find()) blocks.add(m.group(1));
        List<String> files = new ArrayList<>();
        try (Stream<Path> s = Files.list(EXAMPLES)) {
            for (Path p : s.sorted().toList()) files.add(Files.readString(p));
        }
        for (String block : blocks) assertTrue(files.contains(block), "a README block is not an example file verbatim:\n" + block);
        for (String file : files) assertTrue(blocks.contains(file), "an example is missing from the README:\n" + file.lines().limit(3).toList());
    }

    @Test
    void forwardAndGenerate() {
        String out = run(() -> ForwardAndGenerate.main(new String[0]));
        assertTrue(out.matches("(?s)loss \\d+\\.\\d+, logits \\[1, \\d+, 4096].*row 1: .* \\(ids \\d+(,\\d+)*\\)\\s*"), out);
    }

    @Test
    void pTuningAndPrefix() {
        String out = run(() -> PTuningAndPrefix.main(new String[]{dir.resolve("run").toString()}));
        assertTrue(out.matches("(?s)p-tuning: eval loss \\d+\\.\\d+, .*\nprefix: eval loss \\d+\\.\\d+, .*"), out);
        for (String method : new String[]{"p-tuning", "prefix"}) {
            assertTrue(Files.exists(dir.resolve("run").resolve(method).resolve("adapter").resolve(PeftAdapter.ENCODER)), method);
        }
    }

    @Test
    void tuneAndGenerate() {
        String out = run(() -> TuneAndGenerate.main(new String[]{dir.resolve("run").toString()}));
        assertTrue(out.contains("adapter: " + dir.resolve("run/adapter") + ", eval loss "), out);
        try (PeftAdapter.Loaded a = PeftAdapter.load(dir.resolve("run/adapter"))) {
            assertEquals(10, a.config().numVirtualTokens());
        }
    }

    @Test
    void classifyReviews() {
        String out = run(() -> ClassifyReviews.main(new String[]{dir.resolve("run").toString()}));
        assertTrue(out.contains("train: accuracy") && out.contains("eval:  accuracy"), out);
        assertTrue(Files.exists(dir.resolve("run/adapter/verbalizer.json")));
        assertEquals(2, out.lines().filter(l -> l.matches("(积极|消极) \\{.*}")).count(), out);
    }

    @Test
    void mixedTaskBank() {
        String out = run(() -> MixedTaskBank.main(new String[]{dir.resolve("bank").toString()}));
        List<String> lines = out.lines().toList();
        assertTrue(lines.get(0).matches("sentiment: (积极|消极)") && lines.get(1).startsWith("chat: ")
                && lines.get(2).matches("sentiment: (积极|消极)"), out);
        assertTrue(Files.exists(dir.resolve("bank/sentiment/verbalizer.json")) && Files.exists(dir.resolve("bank/chat/adapter_config.json")));
    }

    @Test
    void promptGradient() {
        String out = run(() -> PromptGradient.main(new String[]{dir.resolve("adapter").toString()}));
        assertTrue(out.matches("loss \\d+\\.\\d+, prompt gradient \\[10, 128]\\s*"), out);
        assertTrue(Files.exists(dir.resolve("adapter/adapter_model.safetensors")));
    }

    @Test
    void serveOverHttp() {
        String out = run(() -> ServeOverHttp.main(new String[]{dir.resolve("bank").toString()}));
        assertTrue(out.matches("(?s)poem: .*\\nchat: .*\\nsentiment: (好|差)\\s*"), out);
    }

    private static String run(Runnable example) {
        PrintStream old = System.out;
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try {
            System.setOut(new PrintStream(bytes, true, StandardCharsets.UTF_8));
            example.run();
        } finally {
            System.setOut(old);
        }
        return bytes.toString(StandardCharsets.UTF_8);
    }
}

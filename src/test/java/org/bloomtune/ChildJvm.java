package org.bloomtune;

import org.bloomtune.tensor.KernelSelection;

import java.util.ArrayList;
import java.util.List;

/** Starting the CLI in a child JVM that runs as this one does: the same java, class path and kernel selection. */
public final class ChildJvm {
    private ChildJvm() {}

    /** {@code java [jvmOptions] -cp … org.bloomtune.cli.Main}, as a list the caller appends the CLI's arguments to. */
    public static List<String> cli(String... jvmOptions) {
        List<String> command = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElseThrow(),
                "--enable-native-access=ALL-UNNAMED", "-D" + KernelSelection.PROPERTY + "=" + KernelSelection.current()));
        command.addAll(List.of(jvmOptions));
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), "org.bloomtune.cli.Main"));
        return command;
    }
}

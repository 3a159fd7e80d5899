package org.bloomtune.cli;

import org.bloomtune.tensor.CpuCachingAllocator;
import org.bloomtune.tensor.KernelSelection;
import org.bloomtune.tensor.LibTorch;
import org.bloomtune.tensor.NativeLibrary;
import org.bloomtune.tensor.ProcessExit;
import picocli.CommandLine;
import picocli.CommandLine.Command;

import java.io.UncheckedIOException;

/** {@code bloomtune <command>}: the CLI over the library. */
@Command(name = "bloomtune", mixinStandardHelpOptions = true, versionProvider = Main.Version.class,
        description = "Prompt tuning of BLOOM language models on libtorch.",
        subcommands = {ForwardCommand.class, GenerateCommand.class, ConvertCommand.class, ClassifyCommand.class, ServeCommand.class, BankCommand.class, InitModelCommand.class, ProfileStepCommand.class, TrainTokenizerCommand.class, TrainCommand.class, PretrainCommand.class,
                CommandLine.HelpCommand.class})
public final class Main implements Runnable {
    static {
        // Library notes (System.Logger → java.util.logging) as one plain line on stderr, not JUL's two-line default.
        if (System.getProperty("java.util.logging.SimpleFormatter.format") == null) {
            System.setProperty("java.util.logging.SimpleFormatter.format", "bloomtune: %5$s%n");
        }
        try {
            KernelSelection.current();       // read as the native library loads below: a bad value is the user's to fix
        } catch (IllegalArgumentException e) {
            System.err.println("bloomtune: " + e.getMessage());
            System.exit(Main.BAD_INPUT);
        }
        LibTorch.init();
    }

    /** {@code --version}: this tool's, libtorch's, the threads libtorch computes on, its CPU allocator and the native kernels chosen. */
    static final class Version implements CommandLine.IVersionProvider {
        @Override
        public String[] getVersion() {
            return new String[]{"bloomtune 0.1.0", "libtorch " + LibTorch.version() + ", compute threads: " + LibTorch.threads(),
                    "CPU allocator: " + CpuCachingAllocator.inUse(),
                    "native kernels (-D" + KernelSelection.PROPERTY + "): " + KernelSelection.current()
                            + (NativeLibrary.available() || KernelSelection.current() == KernelSelection.NONE ? "" : ", library not available on this platform")};
        }
    }

    /** Exit code for bad flags, values and input files (picocli uses it for bad flags too). */
    public static final int BAD_INPUT = 2;

    @CommandLine.Spec
    CommandLine.Model.CommandSpec spec;

    public static void main(String[] args) {
        Interrupts.install();
        // Not System.exit: see ProcessExit (OpenBLAS's exit handler can wait forever, libtorch's can crash).
        ProcessExit.now(run(args));
    }

    /** Runs the CLI and returns its exit code (tests call this instead of {@link #main}). */
    public static int run(String... args) {
        return new CommandLine(new Main())
                .setExecutionExceptionHandler(Main::handle)
                .setParameterExceptionHandler(Main::badFlags)
                .execute(args);
    }

    @Override
    public void run() {
        throw new CommandLine.ParameterException(spec.commandLine(), "a command is required");
    }

    // A bad flag or value: one line naming it and where help is, not the whole usage text.
    private static int badFlags(CommandLine.ParameterException e, String[] args) {
        CommandLine cmd = e.getCommandLine();
        String name = cmd.getCommandSpec().qualifiedName();
        cmd.getErr().println(name + ": " + oneLine(e.getMessage()) + " (see " + name + " --help)");
        return BAD_INPUT;
    }

    // Bad input (a malformed file, an impossible value) is the user's to fix: say what, exit 2.
    private static int handle(Exception e, CommandLine cmd, CommandLine.ParseResult parsed) {
        if (e instanceof IllegalArgumentException || e instanceof UncheckedIOException) {
            cmd.getErr().println("bloomtune " + cmd.getCommandName() + ": " + oneLine(e.getMessage()));
            return BAD_INPUT;
        }
        if (e instanceof org.bloomtune.dist.C10dCollective.PeerFailure) {
            cmd.getErr().println("bloomtune " + cmd.getCommandName() + ": " + oneLine(e.getMessage()));
            return 1;
        }
        if (e instanceof org.bloomtune.train.Trainer.DivergedException) {
            cmd.getErr().println("bloomtune " + cmd.getCommandName() + ": stopped: " + e.getMessage());
            return 1;
        }
        cmd.getErr().println("bloomtune " + cmd.getCommandName() + ": internal error");
        e.printStackTrace(cmd.getErr());
        return 1;
    }

    /** Messages are one line, whatever a library put in them. */
    static String oneLine(String message) {
        return message == null ? "(no message)" : message.strip().replaceAll("\\s*\\R\\s*", " ");
    }
}

package org.bloomtune.tensor;

import java.util.Locale;

/**
 * The peak resident memory a run adds above its loaded model, as training, `profile-step` and
 * `generate --stats` report it beside the estimate the run was admitted on. Started after the load:
 * the load may peak higher (a dtype conversion), and only the run itself is measured. Starting one
 * resets the process's peak counter (VmHWM), which other readers of it then see too.
 */
public final class PeakAboveLoad {
    private final long loaded;

    private PeakAboveLoad(long loaded) {
        this.loaded = loaded;
    }

    /** Reads the resident size of the loaded model and resets the kernel's peak counter. */
    public static PeakAboveLoad start() {
        long loaded = ProcessMemory.residentBytes();
        ProcessMemory.resetPeak();
        return new PeakAboveLoad(loaded);
    }

    /** Resident bytes when {@link #start} ran. */
    public long loaded() { return loaded; }

    /** "P MiB (+A MiB above the loaded model; estimated +E MiB)" for the peak so far and {@code estimatedBytes}. */
    public String describe(long estimatedBytes) {
        long peak = ProcessMemory.peakResidentBytes();
        return String.format(Locale.ROOT, "%.0f MiB (+%.0f MiB above the loaded model; estimated +%.0f MiB)", mib(peak), mib(peak - loaded),
                mib(estimatedBytes));
    }

    public static double mib(long bytes) { return bytes / 1048576.0; }
}

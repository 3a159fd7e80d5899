package org.bloomtune.train;

import java.util.List;
import java.util.stream.Collectors;

/**
 * A resume was asked for, but settings or data differ from the checkpoint's, so the run would not
 * continue exactly. {@link RunMode#RESUME_WITH_CHANGES} accepts the changes instead.
 */
public final class ResumeMismatchException extends IllegalArgumentException {
    private final transient List<RunSettings.Change> changes;

    ResumeMismatchException(java.nio.file.Path checkpoint, List<RunSettings.Change> changes) {
        super(checkpoint + " was made with other settings: "
                + changes.stream().map(RunSettings.Change::toString).collect(Collectors.joining("; "))
                + " — an exact resume needs them unchanged (or allow the changes: RESUME_WITH_CHANGES, CLI --allow-changes)");
        this.changes = List.copyOf(changes);
    }

    public List<RunSettings.Change> changes() { return changes; }
}

package org.bloomtune.train;

/** What a run does with an output directory that already holds an earlier run. */
public enum RunMode {
    /** Start a run; refuse a directory that holds one, so nothing is lost by accident. */
    NEW,
    /** Delete the earlier run's checkpoints, metrics, loss curve and adapter, then start afresh. */
    OVERWRITE,
    /** Continue exactly from the newest checkpoint; refuse settings or data that would break exactness. */
    RESUME,
    /** Continue from the newest checkpoint although settings or data changed (no longer an exact resume). */
    RESUME_WITH_CHANGES;

    boolean resumes() { return this == RESUME || this == RESUME_WITH_CHANGES; }
}

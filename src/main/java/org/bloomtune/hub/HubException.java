package org.bloomtune.hub;

/**
 * The hub refused or could not be reached, or the cache lacks what an offline run needs: a one-line
 * message naming the repository (and file), and what to do.
 */
public final class HubException extends IllegalArgumentException {
    /** Why: decides what the user can do about it. */
    public enum Reason { REPO_NOT_FOUND, UNAUTHORIZED, GATED, REVISION_NOT_FOUND, ENTRY_NOT_FOUND, NETWORK, CORRUPT, OFFLINE }

    private final Reason reason;

    public HubException(Reason reason, String message) {
        super(message);
        this.reason = reason;
    }

    public HubException(Reason reason, String message, Throwable cause) {
        super(message, cause);
        this.reason = reason;
    }

    public Reason reason() { return reason; }
}

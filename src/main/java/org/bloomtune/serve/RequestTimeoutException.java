package org.bloomtune.serve;

import java.time.Duration;

/** A request ran past the scheduler's timeout. */
public final class RequestTimeoutException extends RuntimeException {
    RequestTimeoutException(Duration timeout) {
        super("the request did not finish within " + timeout.toSeconds() + " s");
    }
}

package org.bloomtune.serve;

/** The scheduler's queue is full: the request was not taken; try again later. */
public final class QueueFullException extends RuntimeException {
    QueueFullException(int queued) {
        super("the server is busy: " + queued + " requests are already waiting; retry later");
    }
}

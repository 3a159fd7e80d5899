package org.bloomtune.tensor.shim;

/**
 * A libtorch C shim call returned an error code. The shim prints libtorch's own message to stderr;
 * arguments are checked on the Java side before every call, so this signals a bug, not bad input.
 */
public final class ShimException extends RuntimeException {
    ShimException(String op, int code) {
        super("libtorch C shim " + op + " failed with code " + code + " (libtorch's message is on stderr)");
    }
}
